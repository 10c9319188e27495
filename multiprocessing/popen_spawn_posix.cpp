// multiprocessing/popen_spawn_posix.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/popen_spawn_posix.py; see the header.
#include "multiprocessing/popen_spawn_posix.hpp"

#include <unistd.h>

#include <string>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/spawn.hpp"

namespace multiprocessing::popen_spawn_posix {

namespace {

/// The first fd number the child sees its inherited fds under.
constexpr int kFirstChildFd = 3;

}  // namespace

Popen::Popen(BaseProcess& process_obj) : popen_fork::Popen(DeferLaunch{}) {
  if (util::trace_enabled()) util::_trace("Popen: popen_spawn_posix.Popen");
  util::_flush_std_streams();
  Popen::_launch(process_obj);
}

int Popen::duplicate_for_child(int fd) {
  _fds.push_back(fd);
  return kFirstChildFd + static_cast<int>(_fds.size()) - 1;
}

Object Popen::DupFd(int handle) const {
  return Object::Reduced{{"multiprocessing.popen_spawn_posix", "_DupFd"}, {std::int64_t{handle}}, false, {}, {}, {}};
}

// [spawn-launch]
void Popen::_launch(BaseProcess& process_obj) {
  // Python: prep_data and the process object, pickled one after the other.
  // Pickling first: a target that cannot cross fails here, before anything
  // is opened or started.
  std::string fp;
  {
    // Python: set_spawning_popen(self) while pickling: locks may be pickled
    // now (assert_spawning), and fds become numbers for the child (DupFd).
    set_spawning_popen(this);
    struct Reset {
      ~Reset() { set_spawning_popen(nullptr); }
    } reset;
    reduction::dump(spawn::get_preparation_data(process_obj.name()), fp);
    reduction::dump(process_obj._getstate(), fp);
  }

  // The same two pipes as popen_fork: parent_r is the sentinel (EOF when the
  // child, the only holder of child_w, exits); child_r carries the pickles to
  // the child and is its parent_sentinel afterwards.
  // Python: tracker_fd = resource_tracker.getfd(): the child reports its
  // semaphores and shared memory to the same tracker as its parent.
  int tracker_fd = duplicate_for_child(resource_tracker::getfd());
  auto [parent_r, child_w] = os::pipe();
  auto [child_r, parent_w] = os::pipe();
  int child_r_number = duplicate_for_child(child_r.get());
  duplicate_for_child(child_w.get());
  std::vector<std::string> cmd = spawn::get_command_line(
      {{"tracker_fd", std::to_string(tracker_fd)}, {"pipe_handle", std::to_string(child_r_number)}});
  pid = util::spawnv_passfds(spawn::get_executable(), cmd, _fds);
  // The child has its copies now: close ours, so that EOF means what it should.
  child_r.close();
  child_w.close();
  sentinel_ = parent_r.get();
  // Python writes the two pickles as they are and the child's pickle.load
  // stops at each STOP.  Here they go as one message in the connection's
  // framing, so that the child knows where they end without waiting for EOF:
  // parent_w must stay open, as the child's parent_sentinel reads EOF on it
  // only when the parent is gone.
  _write_to_child(parent_w.get(), sentinel_, connection::_frame_header(fp.size()) + fp);
  finalizer = util::Finalize(
      [parent_r = parent_r.release(), parent_w = parent_w.release()] {
        util::close_fds({parent_r, parent_w});
      },
      std::nullopt, "close_fds");
}
// [spawn-launch]

}  // namespace multiprocessing::popen_spawn_posix
