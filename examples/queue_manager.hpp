// examples/queue_manager.hpp — the docs' `class QueueManager(BaseManager): pass`,
// shared by remote_manager_server.cpp and remote_manager_client.cpp.
#pragma once

#include <utility>

#include "multiprocessing.hpp"

/// Python: class QueueManager(BaseManager): pass
class QueueManager : public multiprocessing::managers::BaseManager {
 public:
  QueueManager(multiprocessing::connection::Address address, multiprocessing::Bytes authkey)
      : BaseManager(_registry(), std::move(address), std::move(authkey), "pickle", nullptr, 1.0) {}
  static multiprocessing::managers::Registry& _registry() {
    static multiprocessing::managers::Registry registry("QueueManager", &BaseManager::_registry());
    return registry;
  }
};
