// tests/test_faults.cpp — fault injection: a process killed at a chosen
// point, and a process out of file descriptors.  Each test says what the
// survivor sees and checks that it sees it within a bounded wait, and the
// leak check of test_main.cpp checks that nothing is left behind.  (The
// resource tracker and the fork server killed with SIGKILL are tested beside
// their own module: TestResourceTracker.RelaunchedAfterSigkill and
// TestForkServer in test_forkserver.cpp.)
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>

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

}  // namespace fault_tests

MP_REGISTER_TARGET(fault_tests::hold_lock_until_killed);
MP_REGISTER_TARGET(fault_tests::send_one_big_message);

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

/// setrlimit(RLIMIT_NOFILE) lowered to the fds already open, for one scope:
/// every call that opens an fd fails with EMFILE until it ends.
class NoFreeFds {
 public:
  NoFreeFds() {
    // getrlimit/setrlimit: remember the limit to put it back, then lower the
    // soft limit to the lowest free fd, so that every fd below it is in use
    // and the next open, pipe or socket fails with EMFILE.
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int lowest = ::dup(0);  // dup: the lowest free fd number, closed at once
    ::close(lowest);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(lowest);
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

/// `make` fails with OSError(EMFILE) while no fd is free.
template <class F>
void expect_emfile(const char* what, F&& make) {
  try {
    make();
    ADD_FAILURE() << what << ": no OSError with no fd free";
  } catch (const mp::OSError& e) {
    EXPECT_EQ(e.errno_value(), EMFILE) << what << ": " << e.what();
  }
}

/// With the fd limit reached, making a Pipe (both kinds), a Queue, a
/// SimpleQueue or a Pool is an OSError with errno EMFILE: no crash, and
/// nothing half-made is left open (the leak check counts the fds).
TEST(TestFaults, EmfileAtCreation) {
  NoFreeFds limit;
  ASSERT_TRUE(limit.ok());
  expect_emfile("Pipe()", [] { mp::Pipe(); });
  expect_emfile("Pipe(false)", [] { mp::Pipe(false); });
  expect_emfile("Queue()", [] { mp::Queue(); });
  expect_emfile("SimpleQueue()", [] { mp::SimpleQueue(); });
  expect_emfile("Pool(2)", [] { mp::pool::Pool(2); });
}

}  // namespace
}  // namespace mp_test
