// multiprocessing/dummy/connection.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/dummy/connection.py; see connection.hpp.
#include "multiprocessing/dummy/connection.hpp"

#include "multiprocessing/dummy/dummy.hpp"

namespace multiprocessing::dummy::connection {

Connection::Connection(const Queue& in, const Queue& out)
    : in_(std::make_shared<Queue>(in)), out_(std::make_shared<Queue>(out)) {}

void Connection::send(const Object& obj) { out_->put(obj); }

Object Connection::recv() { return in_->get(); }

void Connection::send_bytes(std::string_view buf) { out_->put(Bytes(std::string(buf))); }

std::string Connection::recv_bytes() { return in_->get().as<Bytes>().data; }

bool Connection::poll(double timeout) {
  if (in_->qsize() > 0) return true;
  if (timeout <= 0.0) return false;
  {
    std::lock_guard guard(in_->not_empty());
    in_->not_empty().wait(timeout);
  }
  return in_->qsize() > 0;
}

std::pair<Connection, Connection> Pipe(bool /*duplex*/) {
  Queue a, b;
  return {Connection(a, b), Connection(b, a)};
}

}  // namespace multiprocessing::dummy::connection
