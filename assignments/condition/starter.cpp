// assignments/condition/starter.cpp — your Condition::wait and Condition::notify
// (see README.md here).
//
// Build with this file in place of the library's functions, then grade:
//   cmake --preset debug -DMP_ASSIGNMENT=condition
//   cmake --build --preset debug -j2
//   ctest --preset debug -L assignment_condition --output-on-failure
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/synchronize.hpp"

namespace multiprocessing::synchronize {

// The members you work with (synchronize.hpp): lock_ (a Lock or an RLock;
// lock_._is_mine(), lock_._count(), acquire(), release()), and three counting
// semaphores that every process shares: sleeping_count_ (processes that went
// to sleep in wait()), woken_count_ (processes that woke up since the last
// notify) and wait_semaphore_ (what a sleeper sleeps on).
//
// Python (synchronize.py), wait(timeout=None):
//     assert self._lock._semlock._is_mine(), 'must acquire() condition before using wait()'
//     self._sleeping_count.release()          # this process is going to sleep
//     count = self._lock._semlock._count()    # release the lock, however nested
//     for i in range(count): self._lock.release()
//     try:
//         return self._wait_semaphore.acquire(True, timeout)
//     finally:
//         self._woken_count.release()         # this process has woken
//         for i in range(count): self._lock.acquire()
bool Condition::wait(std::optional<double> timeout) {
  (void)timeout;
  throw NotImplementedError(
      "assignment condition: Condition::wait is still the starter's. Write it: count yourself "
      "in sleeping_count_, release the lock as often as it is held, sleep on wait_semaphore_, "
      "then count yourself in woken_count_ and take the lock back (assignments/condition/README.md)");
}

// Python, notify(n=1):
//     assert self._lock._semlock._is_mine(), 'lock is not owned'
//     assert not self._wait_semaphore.acquire(False)
//     # forget the sleepers that timed out since the last notify
//     while self._woken_count.acquire(False):
//         res = self._sleeping_count.acquire(False)
//         assert res, ('notify: Bug in sleeping_count.acquire' + '- res should not be False')
//     sleepers = 0
//     while sleepers < n and self._sleeping_count.acquire(False):
//         self._wait_semaphore.release()      # wake up one sleeper
//         sleepers += 1
//     if sleepers:
//         for i in range(sleepers): self._woken_count.acquire()   # wait for it to wake
//         while self._wait_semaphore.acquire(False): pass          # re-zero after timeouts
void Condition::notify(long n) {
  (void)n;
  throw NotImplementedError(
      "assignment condition: Condition::notify is still the starter's. Write it: forget the "
      "sleepers that timed out, release wait_semaphore_ once per sleeper woken (at most n), "
      "then wait on woken_count_ for each (assignments/condition/README.md)");
}

}  // namespace multiprocessing::synchronize
