// tests/test_faults.cpp — fault injection: a process killed at a chosen
// point, a process out of file descriptors, and /dev/shm out of space.  Each test says what the
// survivor sees and checks that it sees it within a bounded wait, and the
// leak check of test_main.cpp checks that nothing is left behind.  (The
// resource tracker and the fork server killed with SIGKILL are tested beside
// their own module: TestResourceTracker.RelaunchedAfterSigkill and
// TestForkServer in test_forkserver.cpp.)
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing/reduction/pickle.hpp"
#include "support.hpp"

namespace mp_test {

using mp::connection::Connection;

/// The children's targets, registered by name for spawn and forkserver.
namespace fault_tests {

/// Take `lock`, say so on `ready`, and wait to be killed while holding it.
void hold_lock_until_killed(mp::synchronize::Lock lock, Connection& ready) {
  lock.acquire();
  ready.send(mp::Object(true));
  for (;;) ::pause();
}

/// Send one message of `size` bytes on `c`: with nobody reading, the child
/// blocks in write() once the pipe is full, part of the message sent.
void send_one_big_message(Connection& c, std::int64_t size) {
  c.send_bytes(std::string(static_cast<std::size_t>(size), 'x'));
}

/// Put one item of `size` characters on `q` and wait to be killed: with
/// nobody reading, the feeder thread blocks in write() once the pipe is full,
/// part of the message written.
void put_one_big_item(mp::queues::Queue q, std::int64_t size) {
  q.put(mp::Object(std::string(static_cast<std::size_t>(size), 'x')));
  for (;;) ::pause();
}

/// Another consumer of `q`: exit 0 if get(timeout=0.2) is Empty, 1 if it
/// returns an item, 2 if it raises anything else.
void get_expecting_empty(mp::queues::Queue q) {
  try {
    q.get(true, 0.2);
    mp::os::_exit(1);
  } catch (const mp::queues::Empty&) {
    mp::os::_exit(0);
  } catch (...) {
    mp::os::_exit(2);
  }
}

/// Exit at once.
void exit_at_once() {}

/// The number of files in /dev/shm.
int files_in_dev_shm() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/dev/shm")) ++n;
  return n;
}

/// SharedMemory(create=True, size): "created", or the OSError's errno and
/// call; and whether a file was left in /dev/shm.
std::string try_shared_memory(std::int64_t size) {
  int before = files_in_dev_shm();
  std::string what;
  try {
    mp::shared_memory::SharedMemory block(std::nullopt, true, size);
    block.close();
    block.unlink();
    what = "created";
  } catch (const mp::OSError& e) {
    what = "OSError " + std::to_string(e.errno_value()) + " from " + e.call();
  }
  if (files_in_dev_shm() != before) what += ", a file left in /dev/shm";
  return what;
}

/// In a mount namespace of its own, with a 1 MiB tmpfs over /dev/shm: make
/// shared memory that does not fit, and send what happened, one line each
/// (or one line "skip: <why>" when the namespace or the mount is refused).
void with_small_dev_shm(Connection& c) {
  // unshare(CLONE_NEWNS): a mount table of this child's own; the mounts
  // below vanish with the child and nobody else sees them.
  if (::unshare(CLONE_NEWNS) != 0) return c.send(mp::Object(std::string("skip: unshare(CLONE_NEWNS): ") + std::strerror(errno)));
  // mount(MS_REC | MS_PRIVATE) on /: no mount made here propagates back to the
  // namespace the test binary runs in.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return c.send(mp::Object(std::string("skip: mount(MS_PRIVATE): ") + std::strerror(errno)));
  }
  // mount a 1 MiB tmpfs over /dev/shm, where shm_open and the heap look.
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1M") != 0) {
    return c.send(mp::Object(std::string("skip: mount tmpfs: ") + std::strerror(errno)));
  }
  mp::Object::List out;
  out.emplace_back("2 MiB: " + try_shared_memory(2 << 20));
  // 768 KiB fits, and every page of it can be written (no SIGBUS)...
  mp::shared_memory::SharedMemory first(std::nullopt, true, 768 << 10);
  std::memset(first.buf().data(), 1, first.buf().size());
  // ... and then 512 KiB does not fit in what is left.
  out.emplace_back("512 KiB more: " + try_shared_memory(512 << 10));
  // The heap puts an arena that /dev/shm has no room for in the temp dir:
  // a 4 MiB RawArray is made, and every byte of it can be written.
  auto array = mp::RawArray<char>(4 << 20);
  for (std::size_t i = 0; i < array.len(); ++i) array[static_cast<std::ptrdiff_t>(i)] = 'a';
  out.emplace_back("RawArray 4 MiB: " + std::string(array[(4 << 20) - 1] == 'a' ? "written" : "not written"));
  first.close();
  first.unlink();
  out.emplace_back("files left: " + std::to_string(files_in_dev_shm()));
  c.send(mp::Object(out));
}

}  // namespace fault_tests

MP_REGISTER_TARGET(fault_tests::with_small_dev_shm);
MP_REGISTER_TARGET(fault_tests::exit_at_once);
MP_REGISTER_TARGET(fault_tests::hold_lock_until_killed);
MP_REGISTER_TARGET(fault_tests::send_one_big_message);
MP_REGISTER_TARGET(fault_tests::put_one_big_item);
MP_REGISTER_TARGET(fault_tests::get_expecting_empty);

namespace {

/// A child killed while it holds a Lock does not release it: the Lock is a
/// POSIX semaphore, and the kernel undoes nothing for a process that dies
/// between sem_wait and sem_post (CPython behaves the same).  The survivors
/// do not hang when they ask with a timeout: acquire(true, t) returns false
/// after t seconds, acquire(false) at once.  A Lock (unlike an RLock) has no
/// owner, so a survivor that knows the holder is dead may release it, and
/// the Lock works again.
TEST(TestFaults, LockHolderKilled) {
  auto lock = mp::Lock();
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = fault_tests::hold_lock_until_killed, .args = {lock, w}});
  p.start();
  w.close();
  ASSERT_TRUE(r.poll(60));
  EXPECT_EQ(r.recv(), mp::Object(true));
  p.kill();
  join_process(p);
  EXPECT_EQ(p.exitcode(), -SIGKILL);

  double t0 = mp::os::monotonic();
  EXPECT_FALSE(lock.acquire(true, 0.2));
  EXPECT_GE(mp::os::monotonic() - t0, 0.2 - 0.01);
  EXPECT_FALSE(lock.acquire(false));
  lock.release();  // the survivor's recovery: the holder is known dead
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

/// A child killed half-way through writing a message: the reader gets the
/// bytes that arrived, then end of file in the middle of the message, which
/// is Python's OSError("got end of file during message") — not a hang, not
/// a short message.  The message (1 MiB) is larger than the pipe (64 KiB),
/// so with nobody reading the child cannot have finished it when it dies.
TEST(TestFaults, WriterKilledMidMessage) {
  auto [r, w] = mp::Pipe(false);
  mp::Process p({.target = fault_tests::send_one_big_message, .args = {w, std::int64_t{1} << 20}});
  p.start();
  w.close();
  ASSERT_TRUE(r.poll(60));  // the header and the first bytes are there
  p.kill();
  join_process(p);
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  expect_raises<mp::OSError>([&] { r.recv_bytes(); }, "got end of file during message");
  // The connection is at end of file now: the next read is Python's EOFError.
  EXPECT_THROW(r.recv_bytes(), mp::EOFError);
}

/// Not in CPython (which waits forever here): the process behind a Queue's
/// feeder is killed half-way through writing a 1 MiB item (the pipe holds
/// 64 KiB).  The pipe never reaches end of file, since the consumer's own
/// process holds its write end, so the rest never comes.  get() with a
/// timeout raises Empty within its timeout plus the one second a begun
/// message is given to go on; get_nowait() too; and another consumer
/// process gets Empty as well, not the tail of the half message as if it
/// were a message of its own (this process keeps the queue's read lock).
TEST(TestFaults, QueueFeederKilledMidWrite) {
  auto q = mp::Queue();
  mp::Process p({.target = fault_tests::put_one_big_item, .args = {q, std::int64_t{1} << 20}});
  p.start();
  ASSERT_TRUE(q._reader().poll(60));  // the feeder has begun writing
  p.kill();
  join_process(p);
  EXPECT_EQ(p.exitcode(), -SIGKILL);

  double t0 = mp::os::monotonic();
  EXPECT_THROW(q.get(true, 0.2), mp::queues::Empty);
  double took = mp::os::monotonic() - t0;
  EXPECT_GE(took, 0.2 - 0.01);
  EXPECT_LT(took, 30.0);  // 1.2 s unloaded; generous for a loaded machine
  t0 = mp::os::monotonic();
  EXPECT_THROW(q.get_nowait(), mp::queues::Empty);
  EXPECT_THROW(q.get(true, 0.1), mp::queues::Empty);
  EXPECT_LT(mp::os::monotonic() - t0, 30.0);

  mp::Process other({.target = fault_tests::get_expecting_empty, .args = {q}});
  other.start();
  join_process(other);
  EXPECT_EQ(other.exitcode(), 0);
}

/// Not in CPython: a get() that gives up in the middle of a message keeps
/// what came, and the next get() reads on from there: the item arrives
/// whole, and the item after it too (the reader never loses its place in
/// the stream).  The message is written by hand, in two parts, so that the
/// pause between them is certain.
TEST(TestFaults, QueueGetResumesHalfReadMessage) {
  auto q = mp::Queue();
  // The two slots the two items would have taken with put().
  ASSERT_TRUE(q._sem().acquire());
  ASSERT_TRUE(q._sem().acquire());
  std::string item(1000, 'y');
  std::string payload = mp::reduction::ForkingPickler::dumps(mp::Object(item));
  std::string first = mp::connection::_frame_header(payload.size()) + payload;
  std::string second_payload = mp::reduction::ForkingPickler::dumps(mp::Object(std::int64_t{2}));
  std::string second = mp::connection::_frame_header(second_payload.size()) + second_payload;
  int fd = q._writer().fileno();

  ASSERT_EQ(mp::os::write(fd, first.substr(0, 500)), 500u);
  double t0 = mp::os::monotonic();
  EXPECT_THROW(q.get(true, 0.1), mp::queues::Empty);
  EXPECT_LT(mp::os::monotonic() - t0, 30.0);
  EXPECT_THROW(q.get_nowait(), mp::queues::Empty);

  std::string rest = first.substr(500) + second;
  ASSERT_EQ(mp::os::write(fd, rest), rest.size());
  EXPECT_EQ(q.get(true, 10), mp::Object(item));
  EXPECT_EQ(q.get(true, 10), mp::Object(std::int64_t{2}));
  EXPECT_THROW(q.get_nowait(), mp::queues::Empty);
}

/// Not in CPython (whose SharedMemory only ftruncates, so that a block
/// larger than what /dev/shm has free is made and its first write past the
/// free space is a SIGBUS): with /dev/shm a 1 MiB tmpfs (in a child, in a
/// mount namespace of its own), a block that does not fit is OSError(ENOSPC)
/// from posix_fallocate, both when it is larger than the whole file system
/// and when it is larger than what is left, and no file is left behind; a
/// block that fits can be written in full; the heap puts an arena too large
/// for /dev/shm in the temp dir, as Python's does.  Skipped where mounting a
/// tmpfs is not allowed.
TEST(TestFaults, SmallDevShmIsENOSPC) {
  auto [r, w] = mp::Pipe(false);
  auto p = mp::get_context("fork").Process({.target = fault_tests::with_small_dev_shm, .args = {w}});
  p->start();
  w.close();
  ASSERT_TRUE(r.poll(60));
  mp::Object got = r.recv();
  join_process(*p);
  EXPECT_EQ(p->exitcode(), 0);
  if (std::holds_alternative<std::string>(got.variant())) GTEST_SKIP() << got.as<std::string>();
  std::string enospc = "OSError " + std::to_string(ENOSPC) + " from posix_fallocate";
  EXPECT_EQ(got, mp::Object(mp::Object::List{"2 MiB: " + enospc, "512 KiB more: " + enospc,
                                             "RawArray 4 MiB: written", "files left: 0"}));
}

/// setrlimit(RLIMIT_NOFILE) lowered for one scope to leave `free` fd numbers
/// above the lowest unused one: the call that wants one more fd than that
/// fails with EMFILE until the scope ends.
class NoFreeFds {
 public:
  explicit NoFreeFds(int free = 0) {
    // getrlimit/setrlimit: remember the limit to put it back, then lower the
    // soft limit to the lowest free fd (plus `free`), so that every fd below
    // it is in use and the next open, pipe or socket past those fails with EMFILE.
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int lowest = ::dup(0);  // dup: the lowest free fd number, closed at once
    ::close(lowest);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(lowest + free);
    ok_ = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
  }
  ~NoFreeFds() { ::setrlimit(RLIMIT_NOFILE, &saved_); }  // setrlimit: the old limit back
  NoFreeFds(const NoFreeFds&) = delete;
  NoFreeFds& operator=(const NoFreeFds&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

/// One place that opens fds: `make` opens them (under the lowered limit) and
/// returns what undoes it, run once the limit is back (a Manager's shutdown
/// itself connects to the server).
using Undo = std::function<void()>;
struct FdCase {
  const char* name;
  std::function<Undo()> make;
  std::function<void()> before = {};  ///< run first, with the limit as it was
};

/// A child that exits at once, started under `method`.
Undo start_child(const char* method) {
  auto p = std::shared_ptr<mp::BaseProcess>(mp::get_context(method).Process({.target = fault_tests::exit_at_once}));
  p->start();
  return [p] { join_process(*p); };
}

const std::vector<FdCase>& fd_cases() {
  static const std::vector<FdCase> table = {
      {"Pipe()", [] { return Undo([p = std::make_shared<std::pair<Connection, Connection>>(mp::Pipe())] {}); }},
      {"Pipe(false)", [] { return Undo([p = std::make_shared<std::pair<Connection, Connection>>(mp::Pipe(false))] {}); }},
      {"Listener()", [] { return Undo([l = std::make_shared<mp::connection::Listener>()] { l->close(); }); }},
      {"Client()", [] {
         // The listener is made first, with the limit already low: the
         // sweep's first steps fail there, the later ones in Client.
         auto l = std::make_shared<mp::connection::Listener>();
         auto c = std::make_shared<Connection>(mp::connection::Client(l->address()));
         return Undo([l, c] {});
       }},
      {"Process.start(fork)", [] { return start_child("fork"); }},
      {"Process.start(spawn)", [] { return start_child("spawn"); }},
      // The fork server started beforehand, with the limit as it was: this
      // case is about the client's fds (a server started at a low limit:
      // TestForkServer.ServerStartedAtALowFdLimitServesOnAfterward).
      {"Process.start(forkserver)", [] { return start_child("forkserver"); }, [] { mp::forkserver::ensure_running(); }},
      {"Queue()", [] { return Undo([q = mp::Queue()] {}); }},
      {"JoinableQueue()", [] { return Undo([q = mp::JoinableQueue()] {}); }},
      {"SimpleQueue()", [] { return Undo([q = mp::SimpleQueue()] {}); }},
      {"Lock()", [] { return Undo([l = mp::Lock()] {}); }},
      {"Semaphore()", [] { return Undo([s = mp::Semaphore(3)] {}); }},
      {"SharedMemory(create=True)", [] {
         auto block = std::make_shared<mp::shared_memory::SharedMemory>(std::nullopt, true, 4096);
         return Undo([block] {
           block->close();
           block->unlink();
         });
       }},
      {"Pool(2)", [] {
         auto pool = std::make_shared<mp::pool::Pool>(2);
         return Undo([pool] {
           pool->close();
           pool->join();
         });
       }},
      {"Manager()", [] {
         auto manager = std::make_shared<mp::managers::SyncManager>(mp::Manager());
         return Undo([manager] { manager->shutdown(); });
       }},
      {"ResourceTracker.ensure_running()", [] {
         auto tracker = std::make_shared<mp::resource_tracker::ResourceTracker>();
         tracker->ensure_running();
         return Undo([tracker] { tracker->_stop(); });
       }},
  };
  return table;
}

/// Every place that opens fds, with 0, 1, 2... fds left under the limit
/// until it succeeds: each attempt either succeeds or raises OSError with
/// errno EMFILE and Python's message ("[Errno 24] Too many open files"); no
/// crash, no other error, and nothing half-made is left behind (the leak
/// check of test_main.cpp counts fds, children and /dev/shm files).
class TestFaultsFds : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TestFaultsFds, EmfileAtCreation) {
  const FdCase& c = fd_cases()[GetParam()];
  constexpr int kMostFds = 24;
  bool made = false;
  for (int free = 0; free <= kMostFds && !made; ++free) {
    Undo undo;
    if (c.before) c.before();
    {
      NoFreeFds limit(free);
      ASSERT_TRUE(limit.ok());
      try {
        undo = c.make();
        made = true;
      } catch (const mp::OSError& e) {
        EXPECT_EQ(e.errno_value(), EMFILE) << c.name << " with " << free << " fds free: " << e.what();
        EXPECT_EQ(std::string(e.what()).rfind("[Errno 24] Too many open files", 0), 0u) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << c.name << " with " << free << " fds free raised "
                      << mp::exception_type_name(e) << ": " << e.what();
      }
    }
    if (undo) undo();
  }
  EXPECT_TRUE(made) << c.name << " failed even with " << kMostFds << " fds free";
}

INSTANTIATE_TEST_SUITE_P(EveryPlace, TestFaultsFds, ::testing::Range<std::size_t>(0, fd_cases().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           std::string name;
                           for (char ch : std::string(fd_cases()[info.param].name)) {
                             if (std::isalnum(static_cast<unsigned char>(ch))) name += ch;
                           }
                           return name;
                         });

}  // namespace
}  // namespace mp_test
