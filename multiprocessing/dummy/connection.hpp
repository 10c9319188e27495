// multiprocessing/dummy/connection.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/dummy/connection.py: the analogue
// of multiprocessing.connection that uses queues instead of sockets.  A Pipe
// is two dummy::Queues, one each way; a Connection sends by putting on one
// and receives by getting from the other.  Nothing is pickled: what is sent
// is the Object itself.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "multiprocessing/reduction.hpp"

namespace multiprocessing::dummy {
class Queue;
}

namespace multiprocessing::dummy::connection {

/// Python: dummy.connection.Connection(_in, _out).  A handle: copies use the
/// same two queues.
class Connection {
 public:
  /// Python: Connection(_in, _out): receive from `in`, send to `out`.
  Connection(const Queue& in, const Queue& out);

  /// Python: send = _out.put.
  void send(const Object& obj);
  /// Python: recv = _in.get: the next object, waiting for one.
  Object recv();
  /// Python: send_bytes = _out.put, with bytes.
  void send_bytes(std::string_view buf);
  /// Python: recv_bytes = _in.get, for what send_bytes sent.
  /// \throws TypeError if the next object is not bytes.
  std::string recv_bytes();
  /// Python: poll(timeout=0.0): whether recv() would return at once; with a
  /// positive timeout, wait that long on the queue's not_empty condition first.
  bool poll(double timeout = 0.0);
  /// Python: close(): nothing to do (the queues go with their last handle).
  void close() {}

 private:
  std::shared_ptr<Queue> in_;   // Python: self._in
  std::shared_ptr<Queue> out_;  // Python: self._out
};

/// Python: dummy.connection.Pipe(duplex=True): (Connection(a, b),
/// Connection(b, a)) over two new Queues.  Both ends can send and receive,
/// whatever `duplex` says, as in Python.
std::pair<Connection, Connection> Pipe(bool duplex = true);

}  // namespace multiprocessing::dummy::connection
