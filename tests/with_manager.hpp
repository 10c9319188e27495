// tests/with_manager.hpp — CPython's ManagerMixin for the suites that run
// their tests with a manager's proxies too (test_synchronize, test_queues,
// test_pool): the fixture that gives each test a running SyncManager.
#pragma once

#include <optional>

#include "support.hpp"

namespace mp_test {

/// CPython's ManagerMixin: the suite's queues, locks, pools... come from a
/// running SyncManager (proxies), while its processes stay real Processes of
/// the test's start method.  CPython starts one manager per class; here each
/// test starts its own and shuts it down, because the leak check wants every
/// child and fd gone when a test ends.  TearDown checks, as CPython's
/// tearDownClass does, that no managed object outlived the test's proxies.
class WithManager : public WithStartMethod {
 protected:
  void SetUp() override {
    WithStartMethod::SetUp();
    manager_.emplace(mp::Manager());
  }
  void TearDown() override;
  /// Python: self.manager.
  mp::managers::SyncManager& manager() { return *manager_; }

 private:
  std::optional<mp::managers::SyncManager> manager_;
};

}  // namespace mp_test
