// multiprocessing/popen_forkserver.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_forkserver.py; see the header.
#include "multiprocessing/popen_forkserver.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/forkserver.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/spawn.hpp"

namespace multiprocessing::popen_forkserver {

Popen::Popen(BaseProcess& process_obj) : popen_fork::Popen(DeferLaunch{}) {
  if (util::trace_enabled()) util::_trace("Popen: popen_forkserver.Popen");
  util::_flush_std_streams();
  Popen::_launch(process_obj);
}

int Popen::duplicate_for_child(int fd) {
  _fds.push_back(fd);
  return static_cast<int>(_fds.size()) - 1;
}

Object Popen::DupFd(int handle) const {
  return Object::Reduced{{"multiprocessing.popen_forkserver", "_DupFd"}, {std::int64_t{handle}}, false, {}, {}, {}};
}

// [forkserver-launch]
void Popen::_launch(BaseProcess& process_obj) {
  // Python: the preparation data and the process object, pickled first, so
  // that a target that cannot cross fails before the server is asked.
  std::string buf;
  {
    // Python: set_spawning_popen(self) while pickling: locks may be pickled
    // now (assert_spawning), and fds become numbers for the child (DupFd).
    set_spawning_popen(this);
    struct Reset {
      ~Reset() { set_spawning_popen(nullptr); }
    } reset;
    reduction::dump(spawn::get_preparation_data(process_obj.name()), buf);
    reduction::dump(process_obj._getstate(), buf);
  }
  auto [status_r, data_w] = forkserver::connect_to_new_process(_fds);
  // Both owned at once, so that a failure below closes them (the server's
  // child then reads EOF and exits; the server's write to status_r fails).
  os::Fd w(data_w);
  os::Fd status(status_r);
  // Python keeps a duplicate of the data pipe's write end until the Popen is
  // finalized: the child's parent sentinel (its end of this pipe) reads EOF
  // only when this process is gone.  F_DUPFD_CLOEXEC: the copy must not leak
  // into children this process execs.
  int parent_w = ::fcntl(w.get(), F_DUPFD_CLOEXEC, 0);
  if (parent_w < 0) raise_os_error("fcntl", errno);
  sentinel_ = status.release();
  finalizer = util::Finalize(
      [parent_w, sentinel = sentinel_] { util::close_fds({parent_w, sentinel}); }, std::nullopt,
      "close_fds");
  // One framed message, as under spawn (spawn::_main reads it).  If the
  // child died at once, the write stops; its exit code will say why.
  _write_to_child(w.get(), -1, connection::_frame_header(buf.size()) + buf);
  w.close();
  // The server writes the child's pid first.
  pid = static_cast<pid_t>(forkserver::read_signed(sentinel_));
  if (util::trace_enabled()) util::_trace("forkserver: child pid " + std::to_string(pid));
}
// [forkserver-launch]

// [forkserver-poll]
std::optional<int> Popen::poll(int flag) {
  if (!returncode) {
    std::optional<double> timeout;
    if (flag == WNOHANG_FLAG) timeout = 0.0;
    if (connection::wait({sentinel_}, timeout).empty()) return std::nullopt;
    try {
      returncode = static_cast<int>(forkserver::read_signed(sentinel_));
    } catch (const std::exception&) {
      returncode = 255;  // the server died before it could tell
    }
    if (util::trace_enabled()) util::_trace("forkserver: child pid " + std::to_string(pid) + ", exitcode " + std::to_string(*returncode));
  }
  return returncode;
}
// [forkserver-poll]

}  // namespace multiprocessing::popen_forkserver
