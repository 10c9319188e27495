// assignments/queue_feeder/starter.cpp — your Queue::_feed, the feeder thread
// (see README.md here).
//
// Build with this file in place of the library's function, then grade:
//   cmake --preset debug -DMP_ASSIGNMENT=queue_feeder
//   cmake --build --preset debug -j2
//   ctest --preset debug -L assignment_queue_feeder --output-on-failure
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::queues {

// What you are given (queues.hpp):
//   feeder->mutex, feeder->notempty, feeder->buffer: what put() appends to
//     (Python: _notempty, _buffer).  An empty std::optional in the buffer is
//     the sentinel close() puts there: write nothing more, close both ends
//     (ends->reader.close(), ends->writer.close()) and return.
//   ends->writer: the pipe's writing Connection; send_bytes(pickle) frames it.
//   wlock: the Lock every writing process shares (hold it while writing, so
//     two processes' messages never interleave).
//   queue_sem: give an item's slot back (release()) when it cannot be sent.
//   onerror(e, item): report an item that could not be pickled or written.
//   ignore_epipe: when the write fails with EPIPE, return quietly.
//
// Python (queues.py), Queue._feed, in short:
//     while True:
//         with notempty:
//             if not buffer: notempty.wait()
//         try:
//             while True:
//                 obj = buffer.popleft()
//                 if obj is sentinel:
//                     reader_close(); writer_close(); return
//                 obj = _ForkingPickler.dumps(obj)   # pickle outside the lock
//                 with writelock: send_bytes(obj)
//         except IndexError:
//             pass                                    # the buffer is empty
//         except Exception as e:
//             if ignore_epipe and getattr(e, 'errno', 0) == errno.EPIPE: return
//             if is_exiting(): info('error in queue thread: %s', e); return
//             queue_sem.release(); onerror(e, obj)
//
// reduction::ForkingPickler::dumps(obj) pickles an Object.
void Queue::_feed(std::shared_ptr<Feeder> feeder, std::shared_ptr<Ends> ends, synchronize::Lock wlock,
                  synchronize::BoundedSemaphore queue_sem, bool ignore_epipe, FeederErrorHook onerror) {
  (void)feeder, (void)ends, (void)wlock, (void)queue_sem, (void)ignore_epipe, (void)onerror;
  throw NotImplementedError(
      "assignment queue_feeder: Queue::_feed is still the starter's. Write the feeder thread: "
      "wait for items in the buffer, pickle each, write it under the writer lock, and on the "
      "sentinel close both ends and return (assignments/queue_feeder/README.md)");
}

}  // namespace multiprocessing::queues
