// tests/with_manager.cpp — the manager fixture of with_manager.hpp.
#include "with_manager.hpp"

namespace mp_test {

void WithManager::TearDown() {
  // Python: ManagerMixin.tearDownClass: every proxy of the test is gone, so
  // the server holds no object; then shutdown() and join.
  if (manager_) {
    EXPECT_EQ(manager_->_number_of_objects(), 0) << manager_->_debug_info();
    manager_->shutdown();
    manager_->join();
    manager_.reset();
  }
  WithStartMethod::TearDown();
}

}  // namespace mp_test
