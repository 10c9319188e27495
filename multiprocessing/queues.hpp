// multiprocessing/queues.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/queues.py: Queue (a pipe, two locks,
// a bounded semaphore and a feeder thread), JoinableQueue (Queue plus a count
// of unfinished tasks) and SimpleQueue (a pipe and two locks, no thread).
//
// What a Queue is made of, as in Python:
//   _reader, _writer   the two ends of one os pipe (connection::Pipe(false))
//   _rlock             a Lock held while a message is read, so that two
//                      readers never take the halves of one message
//   _wlock             a Lock held while a message is written
//   _sem               a BoundedSemaphore(maxsize): put() takes a slot, get()
//                      gives it back; qsize() is maxsize minus its value
//   _buffer, _notempty the items put() has accepted but not yet written, and
//                      the condition the feeder thread sleeps on
//   the feeder thread  started by the first put(): pickles each item and
//                      writes it to the pipe, so put() never blocks on a
//                      full pipe
//
// Queues are handles, like Python references: copying a Queue gives another
// handle to the same queue, so a lambda may capture it by value.  A Queue
// passed in a Process's args reaches the child as Python's does: under fork
// the child's copy (its feeder state reset by the after-fork hook); under
// spawn and forkserver its pipe ends and locks, pickled (__getstate__), which
// is refused at any other time (putting a Queue on a Queue, for one).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/synchronize.hpp"

namespace multiprocessing {
class BaseContext;
}

namespace multiprocessing::queues {

// Empty and Full (Python's queue.Empty and queue.Full) are declared in
// exceptions.hpp, so that an exception of either kind can be rebuilt from
// another process.

/// Python: queues.Queue(maxsize=0, *, ctx).
class Queue {
 public:
  /// Python: Queue(maxsize=0): maxsize <= 0 means as many as a semaphore
  /// counts (SEM_VALUE_MAX).  Makes the pipe, the locks and the semaphore with
  /// `ctx` (the default context when null); no thread yet.
  /// \throws OSError if a pipe or a semaphore cannot be made.
  explicit Queue(int maxsize = 0, BaseContext* ctx = nullptr);

  /// Python: put(obj, block=True, timeout=None): take a slot (waiting at most
  /// `timeout` seconds for one), append `obj` to the buffer and wake the
  /// feeder thread, starting it the first time.  On a JoinableQueue, also one
  /// more unfinished task (Python: JoinableQueue.put).  The item is pickled by the
  /// feeder, so an item that cannot be pickled is reported there
  /// (_on_queue_feeder_error) and dropped, as in Python.
  /// \throws ValueError "Queue <repr> is closed"; Full if no slot came.
  void put(const Object& obj, bool block = true, std::optional<double> timeout = std::nullopt);
  /// Python: get(block=True, timeout=None): the next item, unpickled.  The
  /// timeout covers the whole message (Python's, only its first byte): a
  /// message that has begun is waited for past it only while its bytes keep
  /// coming (at most a second apart).  When get() gives up half-way, this
  /// process keeps what came and the read lock, and its next get() reads on,
  /// so a writer killed half-way through a message makes get() with a
  /// timeout raise Empty, not hang.
  /// \throws ValueError "Queue <repr> is closed"; Empty if nothing came in
  ///   time (at once when block is false); EOFError if every writer is gone.
  Object get(bool block = true, std::optional<double> timeout = std::nullopt);
  /// Python: put_nowait(obj) = put(obj, False).
  void put_nowait(const Object& obj) { put(obj, false); }
  /// Python: get_nowait() = get(False).
  Object get_nowait() { return get(false); }

  /// Python: qsize(): approximate, maxsize minus the semaphore's value (items
  /// put and not yet got, including those still in the feeder's buffer).
  int qsize() const;
  /// Python: empty(): nothing to read in the pipe right now.  Approximate:
  /// an item still in the feeder's buffer is not seen.
  bool empty() const;
  /// Python: full(): every slot taken.
  bool full() const;

  /// Python: close(): no more put()/get() from this process; the feeder
  /// writes what is buffered, then closes this process's pipe ends.
  void close();
  /// Python: join_thread(): wait for the feeder to finish (after close()).
  /// \throws AssertionError "Queue <repr> not closed".
  void join_thread();
  /// Python: cancel_join_thread(): do not wait for the feeder at exit (what
  /// it has not written is lost).
  void cancel_join_thread();

  /// Python's default repr: "<multiprocessing.queues.Queue object at 0x...>".
  std::string repr() const;

  /// Python: Queue._on_queue_feeder_error(e, obj), the hook called in the
  /// feeder thread when an item cannot be pickled or written; it is given the
  /// exception and the item, which is dropped.  The default prints the
  /// exception to stderr (Python: traceback.print_exc()).  Python replaces it
  /// by subclassing; here, set it (it applies to this queue in this process).
  using FeederErrorHook = std::function<void(const std::exception& e, const Object& obj)>;
  void _set_on_queue_feeder_error(FeederErrorHook hook);
  /// Python: _ignore_epipe (used by concurrent.futures): the feeder ends
  /// quietly when the reading end is gone.
  void _set_ignore_epipe(bool ignore);

  /// Python: _maxsize, _reader, _writer, _rlock, _wlock, _sem.
  int _maxsize() const;
  connection::Connection& _reader() const;
  connection::Connection& _writer() const;
  synchronize::Lock& _rlock() const;
  synchronize::Lock& _wlock() const;
  synchronize::BoundedSemaphore& _sem() const;
  /// Python: _thread is not None: the feeder has been started.
  bool _feeder_started() const;

  /// Python: __getstate__ with context.assert_spawning: what a spawned child
  /// receives, (ignore_epipe, maxsize, reader, writer, rlock, wlock, sem,
  /// opid); in memory (fork) this same queue.
  /// \throws RuntimeError "Queue objects should only be shared between
  ///   processes through inheritance" when pickled outside spawning.
  Object _reduce() const;
  /// Python: __setstate__: the queue `_reduce` stands for, with a fresh
  /// feeder state (_reset).
  static Queue _rebuild(const Object& obj);

  struct State;

  /// The two ends of the queue's pipe in this process.  The feeder thread holds
  /// them too: it writes to the writer and, told to quit, closes both (Python
  /// hands it self._reader.close and self._writer.close).
  struct Ends {
    connection::Connection reader;
    connection::Connection writer;
  };

  /// What the feeder thread shares with put(): Python's _buffer and _notempty.
  /// An empty optional in the buffer is Python's _sentinel: "flush and quit".
  struct Feeder {
    std::mutex mutex;
    std::condition_variable notempty;
    std::deque<std::optional<Object>> buffer;
    std::unique_ptr<std::thread> thread;  // Python: _thread (None until the first put)
  };

  /// Python: Queue._feed (a staticmethod there too), the feeder thread's body:
  /// wait for items in `feeder`'s buffer, pickle each, write them framed to
  /// `ends`' writer under `wlock`; on the sentinel close both ends and return.
  /// An item that cannot be pickled or written gives its slot back to
  /// `queue_sem` and goes to `onerror`; EPIPE ends the thread quietly when
  /// `ignore_epipe`.  The course assignment "queue_feeder" is this function.
  static void _feed(std::shared_ptr<Feeder> feeder, std::shared_ptr<Ends> ends, synchronize::Lock wlock,
                    synchronize::BoundedSemaphore queue_sem, bool ignore_epipe, FeederErrorHook onerror);

 protected:
  explicit Queue(std::shared_ptr<State> state) : state_(std::move(state)) {}
  friend class JoinableQueue;

  std::shared_ptr<State> state_;
};

/// Python: queues.JoinableQueue(maxsize=0, *, ctx): a Queue that counts the
/// items put and not yet marked done.
class JoinableQueue : public Queue {
 public:
  explicit JoinableQueue(int maxsize = 0, BaseContext* ctx = nullptr);

  // put() is Queue's: on a JoinableQueue it also counts one more unfinished
  // task, under the condition's lock (Python: JoinableQueue.put).

  /// Python: task_done(): one task fewer; wake join() at zero.
  /// \throws ValueError "task_done() called too many times".
  void task_done();
  /// Python: join(): wait until every item put has been marked done.
  void join();

  /// Python: __getstate__: Queue's state + (cond, unfinished_tasks)
  /// (Queue::_reduce writes it for a JoinableQueue).
  static JoinableQueue _rebuild(const Object& obj);

 private:
  explicit JoinableQueue(std::shared_ptr<State> state) : Queue(std::move(state)) {}
};

/// Python: queues.SimpleQueue(*, ctx): a locked pipe.  put() pickles and
/// writes in the calling thread (it blocks when the pipe is full); get()
/// reads under the reader lock.
class SimpleQueue {
 public:
  explicit SimpleQueue(BaseContext* ctx = nullptr);

  /// Python: put(obj): pickle, then write under the writer lock.
  /// \throws PicklingError for an item that cannot be pickled; OSError if
  ///   the queue is closed.
  void put(const Object& obj);
  /// Python: get(): read one item under the reader lock, then unpickle it.
  /// \throws EOFError if every writer is gone; OSError if closed.
  Object get();
  /// put() and get() without the pickling: the bytes of one pickle written
  /// (or read) under the writer (reader) lock, for a Pool's worker, which
  /// pickles and unpickles its chunks of ints its own way (pool.cpp).
  /// _get_bytes reads into `buffer`, reusing its room
  /// (Connection::recv_bytes_reusing): a worker reads every task into one.
  void _put_bytes(std::string_view pickled);
  void _get_bytes(std::string& buffer);
  /// Python: empty().
  bool empty() const;
  /// Python: close(): close this process's two pipe ends.
  void close();

  /// Python: _reader, _writer, _rlock, _wlock (a Pool writes and reads them
  /// without the locks, from its single task and result threads).
  connection::Connection& _reader() const;
  connection::Connection& _writer() const;
  synchronize::Lock& _rlock() const;
  synchronize::Lock& _wlock() const;

  /// Python: __getstate__ (only while spawning) and __setstate__.
  Object _reduce() const;
  static SimpleQueue _rebuild(const Object& obj);

  struct State;

 private:
  explicit SimpleQueue(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace multiprocessing::queues

namespace multiprocessing {

/// Queues as Process args (reduction.hpp's customization point).
template <>
struct Convert<queues::Queue> {
  static Object to_object(const queues::Queue& q) { return q._reduce(); }
  static queues::Queue from_object(const Object& o) { return queues::Queue::_rebuild(o); }
};
template <>
struct Convert<queues::JoinableQueue> {
  static Object to_object(const queues::JoinableQueue& q) { return q._reduce(); }
  static queues::JoinableQueue from_object(const Object& o) { return queues::JoinableQueue::_rebuild(o); }
};
template <>
struct Convert<queues::SimpleQueue> {
  static Object to_object(const queues::SimpleQueue& q) { return q._reduce(); }
  static queues::SimpleQueue from_object(const Object& o) { return queues::SimpleQueue::_rebuild(o); }
};

}  // namespace multiprocessing
