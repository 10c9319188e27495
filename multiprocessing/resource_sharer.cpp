// multiprocessing/resource_sharer.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/resource_sharer.py; see the header.
#include "multiprocessing/resource_sharer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction/pickle.hpp"

namespace multiprocessing::resource_sharer {

namespace {
// The unpickler may name it (ForkingPickler's allow-list).
const bool resource_sharer_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.resource_sharer", "DupFd");
  return true;
}();

Object address_object(const connection::Address& address) {
  if (const auto* path = std::get_if<std::string>(&address)) return *path;
  const auto& [host, port] = std::get<std::pair<std::string, int>>(address);
  return Object::Tuple{{host, std::int64_t{port}}};
}
}  // namespace

// ------------------------------------------------------------------ DupFd

Object DupFd(int fd) {
  // Python: new_fd = os.dup(fd); the parked copy stays valid even if the
  // caller closes its own fd before the receiver fetches it.
  int new_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (new_fd < 0) raise_os_error("dup", errno);
  std::pair<connection::Address, std::int64_t> id;
  try {
    id = _resource_sharer().register_(
        [new_fd](connection::Connection& conn, pid_t) { reduction::send_handle(conn.fileno(), new_fd); },
        [new_fd] { ::close(new_fd); });
  } catch (...) {
    ::close(new_fd);
    throw;
  }
  // Python pickles the DupFd object: its class, then its __dict__ {'_id': (address, key)}.
  Object::Dict state{{"_id", Object::Tuple{{address_object(id.first), id.second}}}};
  return Object::Reduced{{"multiprocessing.resource_sharer", "DupFd"}, {}, true, {Object(state)}};
}

int detach(const Object& dup_fd) {
  const Object::Reduced* r = dup_fd.reduced();
  const Object::Dict* state = nullptr;
  if (r != nullptr && r->callable.qualname == "DupFd" && r->state.size() == 1) {
    state = std::get_if<Object::Dict>(&r->state[0].variant());
  }
  const Object::Tuple* id = nullptr;
  if (state != nullptr && state->size() == 1 && state->front().first == Object("_id")) {
    id = std::get_if<Object::Tuple>(&state->front().second.variant());
  }
  if (id == nullptr || id->items.size() != 2) {
    throw UnpicklingError("expected a resource_sharer.DupFd, got " + dup_fd.repr());
  }
  connection::Address address;
  if (const auto* path = std::get_if<std::string>(&id->items[0].variant())) {
    address = *path;
  } else {
    const auto& host_port = std::get<Object::Tuple>(id->items[0].variant()).items;
    address = std::make_pair(host_port.at(0).as<std::string>(),
                             static_cast<int>(host_port.at(1).as<std::int64_t>()));
  }
  connection::Connection conn =
      ResourceSharer::get_connection(address, id->items[1].as<std::int64_t>());
  return reduction::recv_handle(conn.fileno());
}

// ------------------------------------------------------------------ the sharer

ResourceSharer& _resource_sharer() {
  static ResourceSharer* sharer = new ResourceSharer();
  return *sharer;
}

void stop(std::optional<double> timeout) { _resource_sharer().stop(timeout); }

ResourceSharer::ResourceSharer()
    : after_fork_(util::register_after_fork([this] { _afterfork(); })) {}

std::pair<connection::Address, std::int64_t> ResourceSharer::register_(Send send, Close close) {
  std::lock_guard guard(lock_);
  if (!address_) _start();
  key_ += 1;
  cache_[key_] = {std::move(send), std::move(close)};
  return {*address_, key_};
}

connection::Connection ResourceSharer::get_connection(const connection::Address& address,
                                                      std::int64_t key) {
  connection::Connection c =
      connection::Client(address, std::nullopt, Bytes(current_process().authkey()));
  c.send(Object::Tuple{{key, std::int64_t{os::getpid()}}});
  return c;
}

void ResourceSharer::stop(std::optional<double> timeout) {
  std::unique_lock guard(lock_);
  if (!address_) return;
  {
    connection::Connection c =
        connection::Client(*address_, std::nullopt, Bytes(current_process().authkey()));
    c.send(Object());  // None: the thread's signal to stop
  }
  auto done = [this] { return !serving_; };
  if (timeout) {
    if (!stopped_.wait_for(guard, std::chrono::duration<double>(*timeout), done)) {
      util::sub_warning("_ResourceSharer thread did not stop when asked");
      return;  // the thread still uses the listener: leave it be
    }
  } else {
    stopped_.wait(guard, done);
  }
  listener_.reset();
  address_.reset();
  for (auto& [key, send_close] : cache_) send_close.second();
  cache_.clear();
}

void ResourceSharer::_afterfork() {
  // The parent's parked fds are the parent's to lend; the child has no thread.
  for (auto& [key, send_close] : cache_) send_close.second();
  cache_.clear();
  util::_at_fork_reinit(lock_);  // Python: self._lock._at_fork_reinit()
  new (&stopped_) std::condition_variable();
  if (listener_) listener_->close();  // the child's copy; only the parent unlinks the file
  listener_.reset();
  address_.reset();
  serving_ = false;
}

void ResourceSharer::_start() {
  util::debug("starting listener and thread for sending handles");
  listener_.emplace(std::nullopt, std::nullopt, 1, Bytes(current_process().authkey()));
  address_ = listener_->address();
  serving_ = true;
  std::thread(&ResourceSharer::_serve, this).detach();
}

void ResourceSharer::_serve() {
  // Python: block every signal in this thread, so they go to the main one.
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    try {
      connection::Connection conn = listener_->accept();
      Object msg = conn.recv();
      if (msg.is_none()) break;
      const auto& request = std::get<Object::Tuple>(msg.variant()).items;
      std::int64_t key = request.at(0).as<std::int64_t>();
      auto destination_pid = static_cast<pid_t>(request.at(1).as<std::int64_t>());
      std::pair<Send, Close> send_close;
      {
        std::lock_guard guard(lock_);
        auto it = cache_.find(key);
        if (it == cache_.end()) throw RuntimeError("no resource is parked under key " + std::to_string(key));
        send_close = std::move(it->second);
        cache_.erase(it);
      }
      try {
        send_close.first(conn, destination_pid);
      } catch (...) {
        send_close.second();
        throw;
      }
      send_close.second();
    } catch (const std::exception& e) {
      // Python: sys.excepthook(...) unless the interpreter is exiting.
      if (!util::is_exiting()) std::fprintf(stderr, "resource_sharer: %s\n", e.what());
    }
  }
  std::lock_guard guard(lock_);
  serving_ = false;
  stopped_.notify_all();
}

}  // namespace multiprocessing::resource_sharer
