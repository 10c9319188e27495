// multiprocessing/resource_sharer.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/resource_sharer.py (the POSIX
// half): lending an open fd to a process that is already running.
//
// While a child is being started, an fd in its pickled arguments simply
// travels with the start (popen_spawn_posix passes it to posix_spawn,
// popen_forkserver sends it to the fork server).  At any other time (a
// Connection sent over a Pipe to a running process) there is no start to ride
// on.  Then the fd is duplicated and parked here, under a key; a background
// thread listens on a unix socket (authenticated with the process's authkey);
// the receiving process connects, names the key, and gets the fd with
// SCM_RIGHTS (reduction::send_handle).  Each parked fd can be fetched once.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::resource_sharer {

/// Python: resource_sharer.DupFd(fd): park a duplicate of `fd` and return
/// what stands for it in a pickle: a DupFd object whose state is the sharer's
/// address and the key.  \throws OSError if the fd cannot be duplicated or
/// the listener cannot be started.
Object DupFd(int fd);

/// Python: DupFd.detach(): fetch the parked fd from the process that parked
/// it (once).  Returns an fd the caller owns (close-on-exec).
/// \throws AuthenticationError if this process has another authkey;
///   KeyError-like RuntimeError if the key was fetched already; OSError.
int detach(const Object& dup_fd);

/// Python: resource_sharer._ResourceSharer: the parked resources and the
/// thread that hands them out.  One per process (`_resource_sharer()`).
class ResourceSharer {
 public:
  /// How a parked resource is sent, and how it is dropped.
  using Send = std::function<void(connection::Connection&, pid_t)>;
  using Close = std::function<void()>;

  ResourceSharer();

  /// Python: register(send, close): park a resource; start the listener and
  /// thread on first use.  Returns (address, key).
  std::pair<connection::Address, std::int64_t> register_(Send send, Close close);

  /// Python: get_connection(ident): connect to the sharer at `address` with
  /// this process's authkey and ask for `key`.
  static connection::Connection get_connection(const connection::Address& address, std::int64_t key);

  /// Python: stop(timeout=None): stop the thread, close the listener, drop
  /// whatever is still parked.
  void stop(std::optional<double> timeout = std::nullopt);

 private:
  void _afterfork();  // Python: _afterfork: a forked child starts with nothing
  void _start();      // Python: _start: the listener and the thread
  void _serve();      // Python: _serve: the thread's loop

  std::mutex lock_;
  std::int64_t key_ = 0;
  std::map<std::int64_t, std::pair<Send, Close>> cache_;
  std::optional<connection::Listener> listener_;
  std::optional<connection::Address> address_;
  // The thread is detached; it reports its end here (so that a forked child,
  // which has no such thread, never joins one).
  bool serving_ = false;
  std::condition_variable stopped_;
  util::AfterForkRegistration after_fork_;
};

/// Python: resource_sharer._resource_sharer (never destroyed: its thread may
/// still run while the program's static objects are destroyed).
ResourceSharer& _resource_sharer();

/// Python: resource_sharer.stop(timeout=None).
void stop(std::optional<double> timeout = std::nullopt);

}  // namespace multiprocessing::resource_sharer
