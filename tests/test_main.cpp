// tests/test_main.cpp — the test binary's main, with the leak check every test
// passes through (DESIGN.md, "What every test leaves behind"): after each test
// there must be no new open fd, no child process (running or zombie), no new
// file in /dev/shm and no new "pymp-" temp directory (util::get_temp_dir) but
// this process's own.  A leak fails the test that made it, and is then cleaned
// up so that the next test starts from a clean slate.  A file in /dev/shm or a
// temp directory that another test binary running at the same time made is
// not ours: it is left alone (see mapped_by_others, listened_on_by_others).
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/forkserver.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/shared_memory.hpp"

namespace {

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> names;
  if (DIR* dir = ::opendir(path)) {
    while (dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') names.insert(e->d_name);
    }
    ::closedir(dir);
  }
  return names;
}

std::set<int> open_fds() {
  std::set<int> fds;
  // Read the names first, then drop the fd that opendir itself used.
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::stoi(e->d_name);
    if (fd != own) fds.insert(fd);
  }
  ::closedir(dir);
  return fds;
}

/// One process as /proc/<pid>/stat shows it.
struct ProcStat {
  pid_t pid;
  char state;  // 'R', 'S', 'Z' (zombie)...
  pid_t ppid;
};

/// Every process on the machine, from /proc.
std::vector<ProcStat> all_processes() {
  std::vector<ProcStat> result;
  for (const std::string& name : list_dir("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat("/proc/" + name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the command name (which may hold spaces) in parentheses.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    ProcStat p{std::stoi(name), '?', 0};
    rest >> p.state >> p.ppid;
    result.push_back(p);
  }
  return result;
}

/// Every process whose parent is this one, zombies included ("pid state").
std::vector<std::pair<pid_t, char>> children() {
  std::vector<std::pair<pid_t, char>> result;
  for (const ProcStat& p : all_processes()) {
    if (p.ppid == ::getpid()) result.emplace_back(p.pid, p.state);
  }
  return result;
}

/// This process and its descendants (a fork server's children are grandchildren).
std::set<pid_t> own_tree() {
  std::vector<ProcStat> processes = all_processes();
  std::set<pid_t> tree{::getpid()};
  for (bool grew = true; grew;) {
    grew = false;
    for (const ProcStat& p : processes) {
      if (tree.count(p.ppid) && tree.insert(p.pid).second) grew = true;
    }
  }
  return tree;
}

/// Whether a process outside `own` maps /dev/shm/<name>: another test binary
/// running at the same time (another worktree, ctest -j) made it.  A semaphore
/// of the spawn context keeps its name while it lives, so such a file may
/// appear during one of our tests; it is not ours to report or unlink (doing
/// so made that binary's spawned children fail in sem_open with ENOENT).
/// Matched by inode: glibc's sem_open maps a temporary file and then links it
/// under its name, so the maps show the temporary name.
bool mapped_by_others(const std::string& name, const std::set<pid_t>& own) {
  struct stat st{};
  if (::stat(("/dev/shm/" + name).c_str(), &st) != 0) return false;
  const std::string inode = std::to_string(st.st_ino);
  for (const std::string& entry : list_dir("/proc")) {
    if (entry.find_first_not_of("0123456789") != std::string::npos) continue;
    if (own.count(std::stoi(entry))) continue;
    std::ifstream maps("/proc/" + entry + "/maps");
    for (std::string line; std::getline(maps, line);) {
      // address perms offset dev inode path
      std::istringstream fields(line);
      std::string address, perms, offset, dev, ino, path;
      fields >> address >> perms >> offset >> dev >> ino >> path;
      if (ino == inode && path.rfind("/dev/shm/", 0) == 0) return true;
    }
  }
  return false;
}

/// Where util::get_temp_dir() makes its "pymp-" directories: $TMPDIR or /tmp.
std::string temp_base() {
  const char* base = std::getenv("TMPDIR");
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

/// The "pymp-" directories there now.
std::set<std::string> temp_dirs() {
  std::set<std::string> dirs;
  for (const std::string& name : list_dir(temp_base().c_str())) {
    if (name.rfind("pymp-", 0) == 0) dirs.insert(name);
  }
  return dirs;
}

/// Whether a live process listens on a Unix socket inside `dir`: another test
/// binary running at the same time made it for a Listener it still has.  A
/// socket's path is in /proc/net/unix only while it is bound; the file of a
/// process that was killed stays behind, unbound.
bool listened_on_by_others(const std::string& dir) {
  std::ifstream table("/proc/net/unix");
  const std::string prefix = dir + "/";
  for (std::string line; std::getline(table, line);) {
    // Num RefCount Protocol Flags Type St Inode Path: the path comes last.
    auto at = line.find(prefix);
    if (at != std::string::npos && at > 0 && line[at - 1] == ' ') return true;
  }
  return false;
}

/// Removes a temp directory left behind, with its files (util's own removal
/// runs only at the exit of the process that made it).
void remove_temp_dir(const std::string& dir) {
  for (const std::string& name : list_dir(dir.c_str())) ::unlink((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

std::string fd_target(int fd) {
  char buffer[256] = {};
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "?";
}

class LeakCheck : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override {
    fds_ = open_fds();
    shm_ = list_dir("/dev/shm");
    tmp_ = temp_dirs();
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::string leaks;
    // The resource tracker (resource_tracker.hpp) is meant to outlive the
    // test that first registered something: a child of this process holding
    // the read end of a pipe whose write end this process keeps.  Exactly
    // that pid and that fd are exempt.  What it tracks is not: a segment or
    // semaphore left registered is still a file in /dev/shm, caught below.
    auto& tracker = multiprocessing::resource_tracker::_resource_tracker();
    const pid_t tracker_pid = tracker._pid();
    const int tracker_fd = tracker._fd();
    // The fork server (forkserver.hpp) is the same kind of long-lived child:
    // started on first use, it keeps running until this process closes the
    // write end of its alive pipe.  Its pid and that fd are exempt too.
    auto& server = multiprocessing::forkserver::_forkserver();
    const pid_t server_pid = server._pid().value_or(-1);
    const int server_fd = server._alive_fd();
    // A child that was just killed may take a moment to become a zombie that
    // waitpid could reap; but a test must have reaped it before it ends.
    for (auto [pid, state] : children()) {
      if (pid == tracker_pid || pid == server_pid) continue;
      leaks += "  child process " + std::to_string(pid) + " (state " + state + ")\n";
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    for (int fd : open_fds()) {
      if (!fds_.count(fd) && fd != tracker_fd && fd != server_fd) {
        leaks += "  fd " + std::to_string(fd) + " -> " + fd_target(fd) + "\n";
        ::close(fd);
      }
    }
    // A new file that another test binary maps is that binary's; one that
    // nobody maps may be another binary's on its way out (closed, not yet
    // unlinked) or a heap arena between mkstemp and unlink: it is ours only
    // if it is still there a while later (below).
    std::vector<std::string> candidates;
    for (const std::string& name : list_dir("/dev/shm")) {
      // glibc's sem_open first makes "sem.XXXXXX" and renames it: transient.
      bool glibc_temporary = name.size() == 10 && name.rfind("sem.", 0) == 0;
      if (!shm_.count(name) && !glibc_temporary) candidates.push_back(name);
    }
    // A new temp directory is ours to report unless it is this process's own
    // (kept until exit, shared with forked children) or another binary's
    // that a Listener of it still uses.  One whose process was killed stays
    // behind: that process never ran its exit's clean-up.
    const std::string base = temp_base();
    const auto& own_tempdir = multiprocessing::current_process()._config.tempdir;
    std::vector<std::string> dirs;
    for (const std::string& name : temp_dirs()) {
      std::string dir = base + "/" + name;
      if (!tmp_.count(name) && !(own_tempdir && *own_tempdir == dir)) dirs.push_back(dir);
    }
    // Another binary's file may stay there, mapped by nobody, for a while:
    // its creator closed it and its resource tracker, slowed by a loaded
    // machine, has not unlinked it yet (and a process on its way out removes
    // its temp directory last).  So a candidate is watched for up to 3 s and
    // dropped as soon as it is gone or another process uses it; only one that
    // stays there, unused, the whole time is reported.
    for (int round = 0; round < 30 && !(candidates.empty() && dirs.empty()); ++round) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const std::set<pid_t> own = own_tree();
      std::erase_if(candidates, [&](const std::string& name) {
        return ::access(("/dev/shm/" + name).c_str(), F_OK) != 0 || mapped_by_others(name, own);
      });
      std::erase_if(dirs, [](const std::string& dir) {
        return ::access(dir.c_str(), F_OK) != 0 || listened_on_by_others(dir);
      });
    }
    for (const std::string& dir : dirs) {
      std::string inside;
      for (const std::string& name : list_dir(dir.c_str())) inside += (inside.empty() ? "" : " ") + name;
      leaks += "  " + dir + "/ (a temp directory" + (inside.empty() ? "" : ", holding " + inside) + ")\n";
      remove_temp_dir(dir);
    }
    for (const std::string& name : candidates) {
      leaks += "  /dev/shm/" + name + "\n";
      ::unlink(("/dev/shm/" + name).c_str());
      // Tell a running tracker too, or it would warn again at exit.
      bool semaphore = name.rfind("sem.", 0) == 0;
      try {
        if (tracker_fd >= 0)
          tracker.unregister("/" + (semaphore ? name.substr(4) : name), semaphore ? "semaphore" : "shared_memory");
      } catch (const std::exception&) {
      }
    }
    if (!leaks.empty()) {
      ADD_FAILURE() << info.test_suite_name() << "." << info.name() << " left behind:\n" << leaks;
    }
  }

  std::set<int> fds_;
  std::set<std::string> shm_;
  std::set<std::string> tmp_;
};

}  // namespace

int main(int argc, char** argv) {
  // A child started by the spawn or forkserver method is this program run
  // again: freeze_support() runs its Process object and exits; here it returns.
  multiprocessing::freeze_support();
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new LeakCheck);
  return RUN_ALL_TESTS();
}

// ---------------------------------------------------------------- the check checks

/// Leaks an fd and a child on purpose; run only by LeakCheckSelfTest below.
TEST(TestLeakCheck, DISABLED_Leaky) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
}

/// Runs one disabled test of this binary in a fresh process (the leak
/// check's own tests must see it fail); returns the wait status and what the
/// process wrote on stdout, and on stderr too when `with_stderr`.
static std::pair<int, std::string> run_disabled_test(const char* name, bool with_stderr) {
  int out[2];
  if (::pipe(out) != 0) return {-1, "pipe failed"};
  std::string filter = std::string("--gtest_filter=") + name;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    if (with_stderr) ::dup2(out[1], 2);
    ::execl("/proc/self/exe", "test_multiprocessing", "--gtest_also_run_disabled_tests",
            filter.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) output.append(buffer, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {status, output};
}

/// The rest of the line after `key` (e.g. "BLOCK=") in a disabled test's
/// output, or "" if no line has it.
static std::string value_after(const std::string& output, const std::string& key) {
  auto at = output.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return output.substr(at, output.find('\n', at) - at);
}

/// The leak check fails a test that leaves an fd or a child behind.
TEST(TestLeakCheck, DetectsLeaks) {
  auto [status, output] = run_disabled_test("TestLeakCheck.DISABLED_Leaky", /*with_stderr=*/false);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  EXPECT_NE(output.find("left behind"), std::string::npos) << output;
  EXPECT_NE(output.find("child process"), std::string::npos) << output;
  EXPECT_NE(output.find("-> pipe:"), std::string::npos) << output;
}

/// Leaves a registered shared memory block behind on purpose (and starts the
/// resource tracker to do so); run only by TrackerIsExemptItsBlocksAreNot.
TEST(TestLeakCheck, DISABLED_LeakyBlock) {
  multiprocessing::shared_memory::SharedMemory block(std::nullopt, /*create=*/true, 16);
  std::printf("BLOCK=%s\n", block.name().c_str());
}

/// The resource tracker, a child holding a pipe, is not reported as a leak;
/// the block it tracks is, and the check tells the tracker it is gone (so the
/// tracker does not warn about it at exit).
TEST(TestLeakCheck, TrackerIsExemptItsBlocksAreNot) {
  // stdout and stderr both: the tracker keeps stderr, so EOF comes after it exits.
  auto [status, output] = run_disabled_test("TestLeakCheck.DISABLED_LeakyBlock", /*with_stderr=*/true);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  std::string name = value_after(output, "BLOCK=");
  ASSERT_FALSE(name.empty()) << output;
  EXPECT_NE(output.find("left behind:\n  /dev/shm/" + name + "\n"), std::string::npos) << output;
  EXPECT_EQ(output.find("child process"), std::string::npos) << output;
  EXPECT_EQ(output.find("  fd "), std::string::npos) << output;
  EXPECT_EQ(output.find("UserWarning"), std::string::npos) << output;
  EXPECT_NE(::access(("/dev/shm/" + name).c_str(), F_OK), 0);
}

/// Leaves a temp directory behind on purpose, as a killed server does: a
/// forked child makes its own (a Listener's socket file in it) and is killed
/// before its exit could remove it.  Run only by KilledListenersTempDirIsALeak.
TEST(TestLeakCheck, DISABLED_LeakyTempDir) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    multiprocessing::current_process()._config.tempdir.reset();  // a directory of its own
    multiprocessing::connection::Listener listener;
    std::string path = std::get<std::string>(listener.address()) + "\n";
    (void)!::write(ready[1], path.data(), path.size());
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char buffer[512] = {};
  ssize_t n = ::read(ready[0], buffer, sizeof buffer - 1);
  ::close(ready[0]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_GT(n, 0);
  std::printf("SOCKET=%s", buffer);
}

/// A temp directory that a killed process left is reported and removed.
TEST(TestLeakCheck, KilledListenersTempDirIsALeak) {
  auto [status, output] = run_disabled_test("TestLeakCheck.DISABLED_LeakyTempDir", /*with_stderr=*/false);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  std::string socket = value_after(output, "SOCKET=");
  ASSERT_FALSE(socket.empty()) << output;
  std::string dir = socket.substr(0, socket.rfind('/'));
  std::string file = socket.substr(socket.rfind('/') + 1);
  EXPECT_NE(output.find("left behind:\n  " + dir + "/ (a temp directory, holding " + file + ")\n"),
            std::string::npos)
      << output;
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
}
