// multiprocessing/queues.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/queues.py; see queues.hpp.
#include "multiprocessing/queues.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "multiprocessing/context.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::queues {

using Ends = Queue::Ends;
using Feeder = Queue::Feeder;

namespace {

const char* const kSharedMessage =
    "Queue objects should only be shared between processes through inheritance";

// A lock that can be waited for with a timeout, for std::unique_lock, built
// on a mutex and a condition variable rather than std::timed_mutex: with the
// steady clock, std::timed_mutex waits in pthread_mutex_clocklock, which
// ThreadSanitizer (GCC 12's) does not intercept, so it never saw those locks
// taken and reported each unlock as the unlock of an unlocked mutex, and
// would have reported what they protect as races.  A condition variable's
// timed wait (pthread_cond_clockwait) it does follow.
class TimedLock {
 public:
  void lock() {
    std::unique_lock guard(mutex_);
    released_.wait(guard, [&] { return !held_; });
    held_ = true;
  }
  bool try_lock() {
    std::lock_guard guard(mutex_);
    if (held_) return false;
    held_ = true;
    return true;
  }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock guard(mutex_);
    if (!released_.wait_for(guard, timeout, [&] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard guard(mutex_);
      held_ = false;
    }
    released_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool held_ = false;
};

}  // namespace

// ------------------------------------------------------------------ Queue

struct Queue::State {
  // Shared with the other processes through the kernel: the pipe, the locks,
  // the semaphore.  Python: _maxsize, _reader, _writer, _rlock, _wlock, _sem,
  // _opid, _ignore_epipe.
  int maxsize = 0;
  std::shared_ptr<Ends> ends;
  synchronize::Lock rlock;
  synchronize::Lock wlock;
  synchronize::BoundedSemaphore sem;
  pid_t opid = 0;
  bool ignore_epipe = false;
  // A JoinableQueue's: _unfinished_tasks and _cond.
  std::optional<synchronize::Semaphore> unfinished_tasks;
  std::optional<synchronize::Condition> cond;

  // This process's own (Python: what _reset() sets).
  std::shared_ptr<Feeder> feeder = std::make_shared<Feeder>();
  bool closed = false;           // Python: _closed
  bool joincancelled = false;    // Python: _joincancelled
  util::Finalize close;          // Python: _close (sends the sentinel)
  util::Finalize jointhread;     // Python: _jointhread (joins the feeder)
  FeederErrorHook on_error;      // Python: _on_queue_feeder_error
  // Not in Python: a message whose reading a get() gave up on at its
  // deadline.  This process keeps the _rlock and what arrived, and its next
  // get() reads on from there, so that no reader ever starts in the middle
  // of a message.  `reading` lets one thread of this process at a time use them.
  TimedLock reading;
  connection::Connection::PartialMessage partial;
  bool rlock_held = false;       // this process holds _rlock for `partial`
  util::AfterForkRegistration after_fork;

  State(synchronize::Lock rlock_, synchronize::Lock wlock_, synchronize::BoundedSemaphore sem_)
      : rlock(std::move(rlock_)), wlock(std::move(wlock_)), sem(std::move(sem_)) {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // The last handle in this process is gone (Python: the queue is garbage
  // collected, which fires its _close finalizer).  Python leaves the daemon
  // feeder running and joins it at exit; a C++ thread may not outlive what it
  // uses, so it is joined here, after it has written what was buffered.
  ~State() {
    close();  // the sentinel, if the feeder runs
    if (jointhread.still_active()) {
      jointhread();
    } else if (feeder->thread && feeder->thread->joinable()) {
      // cancel_join_thread() was called: do not wait; the thread owns what it
      // uses (the Feeder, the Ends), so it may finish on its own.
      feeder->thread->detach();
    }
  }

  void reset_after_fork();
  void start_thread();
};

namespace {

void print_feeder_error(const std::exception& e, const Object& obj) {
  // Python: traceback.print_exc(), in the feeder thread.
  std::fprintf(stderr, "Exception in the queue feeder thread, item %s dropped:\n%s: %s\n",
               obj.repr().c_str(), exception_type_name(e).c_str(), e.what());
  std::fflush(stderr);
}

}  // namespace

// Python: Queue._feed, the feeder thread's body.  It holds shared pointers to
// what it uses, never the Queue itself.
// MP_ASSIGNABLE: the assignment "queue_feeder" replaces this function.
MP_ASSIGNABLE void Queue::_feed(std::shared_ptr<Feeder> feeder, std::shared_ptr<Ends> ends,
                                synchronize::Lock wlock, synchronize::BoundedSemaphore queue_sem,
                                bool ignore_epipe, FeederErrorHook onerror) {
  util::debug("starting thread to feed data to pipe");
  // A write to a pipe whose every reader is gone raises SIGPIPE, which would
  // kill the process (Python ignores SIGPIPE at startup; a C++ program does
  // not).  Blocked in this thread, it becomes EPIPE, reported below.
  sigset_t sigpipe;
  ::sigemptyset(&sigpipe);
  ::sigaddset(&sigpipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

  // [queue-feed-take]
  std::deque<std::optional<Object>> batch;
  std::string message;  // framed pickles of the whole batch, written at once
  while (true) {
    {
      std::unique_lock lock(feeder->mutex);
      feeder->notempty.wait(lock, [&] { return !feeder->buffer.empty(); });
      batch.swap(feeder->buffer);  // take everything put so far
    }
    while (!batch.empty()) {
      std::optional<Object> obj = std::move(batch.front());
      batch.pop_front();
      if (!obj) {
        util::debug("feeder thread got sentinel -- exiting");
        ends->reader.close();
        ends->writer.close();
        return;
      }
      // [queue-feed-take]
      // [queue-feed-write]
      // Serialize before taking the lock (Python's comment), then write
      // under the writer lock.  Items that follow in the batch are framed
      // into the same write: one system call for many messages, each still a
      // message of its own for the reader.
      std::vector<Object> sent;  // the items in `message`
      try {
        message.clear();
        std::string pickled = reduction::ForkingPickler::dumps(*obj);
        message += connection::_frame_header(pickled.size());
        message += pickled;
        sent.push_back(std::move(*obj));
        while (!batch.empty() && batch.front() && message.size() < 16384) {
          try {
            pickled = reduction::ForkingPickler::dumps(*batch.front());
          } catch (const std::exception&) {
            break;  // reported when its own turn comes
          }
          message += connection::_frame_header(pickled.size());
          message += pickled;
          sent.push_back(std::move(*batch.front()));
          batch.pop_front();
        }
        if (util::trace_enabled()) util::_trace("Queue feeder: write " + std::to_string(sent.size()) + " item(s), " + std::to_string(message.size()) + " bytes");
        std::lock_guard guard(wlock);
        ends->writer._send_framed(message);
        // [queue-feed-write]
      // [queue-feed-error]
      } catch (const std::exception& e) {
        const auto* os_error = dynamic_cast<const OSError*>(&e);
        if (ignore_epipe && os_error != nullptr && os_error->errno_value() == EPIPE) return;
        // Once the process is cleaning up, what the thread uses may be gone
        // (Python's comment): say it quietly and stop.
        if (util::is_exiting()) {
          util::info(std::string("error in queue thread: ") + e.what());
          return;
        }
        // An item not sent gives its slot back, as if it had been taken off
        // the queue (Python's comment), and is reported.
        if (sent.empty()) sent.push_back(std::move(*obj));  // its pickling failed
        for (const Object& item : sent) {
          queue_sem.release();
          onerror(e, item);
        }
      }
      // [queue-feed-error]
    }
  }
}


// [queue-start-thread]
void Queue::State::start_thread() {
  // Python: Queue._start_thread.
  util::debug("Queue._start_thread()");
  feeder->buffer.clear();
  feeder->thread = std::make_unique<std::thread>(
      _feed, feeder, ends, wlock, sem, ignore_epipe,
      on_error ? on_error : FeederErrorHook(print_feeder_error));
  util::debug("... done self._thread.start()");

  std::shared_ptr<Feeder> f = feeder;
  if (!joincancelled) {
    // Python: Finalize(self._thread, Queue._finalize_join, exitpriority=-5):
    // at exit, after every finalizer of priority >= 0, wait for the thread.
    jointhread = util::Finalize(
        [f] {
          util::debug("joining queue thread");
          if (f->thread && f->thread->joinable()) f->thread->join();
          util::debug("... queue thread joined");
        },
        -5, "Queue._finalize_join");
  }
  // Python: Finalize(self, Queue._finalize_close, exitpriority=10): tell the
  // thread to quit once it has written the buffer.
  close = util::Finalize(
      [f] {
        util::debug("telling queue thread to quit");
        std::lock_guard lock(f->mutex);
        f->buffer.emplace_back(std::nullopt);
        f->notempty.notify_one();
      },
      10, "Queue._finalize_close");
}
// [queue-start-thread]

// [queue-after-fork]
void Queue::State::reset_after_fork() {
  // Python: Queue._after_fork -> _reset(after_fork=True).  Only the thread
  // that forked exists in the child: the parent's feeder thread does not.
  // Its std::thread object, and the mutex it may have held at the fork, are
  // the parent's: the child lets them go without touching them (joining or
  // destroying a std::thread that runs is not allowed), and starts afresh.
  new std::shared_ptr<Feeder>(std::move(feeder));  // deliberately never freed
  feeder = std::make_shared<Feeder>();
  closed = false;
  joincancelled = false;
  close = util::Finalize();       // the parent's finalizers are inert here
  jointhread = util::Finalize();
  // A message half-read by the parent is the parent's to finish: it holds _rlock.
  new (&reading) TimedLock;  // perhaps held by another parent thread at the fork
  partial = {};
  rlock_held = false;
}
// [queue-after-fork]

namespace {
std::shared_ptr<Queue::State> make_state(int maxsize, BaseContext* ctx, bool joinable) {
  if (ctx == nullptr) ctx = &get_context();
  if (maxsize <= 0) maxsize = SEM_VALUE_MAX;  // Python: from .synchronize import SEM_VALUE_MAX
  auto [reader, writer] = connection::Pipe(/*duplex=*/false);
  auto state = std::make_shared<Queue::State>(ctx->Lock(), ctx->Lock(),
                                              ctx->BoundedSemaphore(static_cast<unsigned>(maxsize)));
  state->maxsize = maxsize;
  state->ends = std::make_shared<Ends>(Ends{std::move(reader), std::move(writer)});
  state->opid = os::getpid();
  if (joinable) {
    state->unfinished_tasks.emplace(ctx->Semaphore(0));
    state->cond.emplace(ctx->Condition());
  }
  Queue::State* raw = state.get();
  state->after_fork = util::register_after_fork([raw] {
    util::debug("Queue._after_fork()");
    raw->reset_after_fork();
  });
  return state;
}
}  // namespace

Queue::Queue(int maxsize, BaseContext* ctx) : state_(make_state(maxsize, ctx, false)) {}

std::string Queue::repr() const {
  std::ostringstream out;
  out << "<multiprocessing.queues." << (state_->cond ? "JoinableQueue" : "Queue") << " object at "
      << static_cast<const void*>(state_.get()) << ">";
  return out.str();
}

// [queue-put]
void Queue::put(const Object& obj, bool block, std::optional<double> timeout) {
  State& self = *state_;
  if (self.closed) throw ValueError("Queue " + repr() + " is closed");
  if (!self.sem.acquire(block, timeout)) throw Full();

  // Python: `with self._notempty:` (JoinableQueue: `with self._notempty,
  // self._cond:`, counting the task under both).
  std::unique_lock lock(self.feeder->mutex);
  std::optional<std::unique_lock<synchronize::Condition>> cond_lock;
  if (self.cond) cond_lock.emplace(*self.cond);
  if (!self.feeder->thread) self.start_thread();
  self.feeder->buffer.emplace_back(obj);
  if (self.unfinished_tasks) self.unfinished_tasks->release();
  self.feeder->notempty.notify_one();
}
// [queue-put]

// [queue-get]
Object Queue::get(bool block, std::optional<double> timeout) {
  State& self = *state_;
  if (self.closed) throw ValueError("Queue " + repr() + " is closed");
  // Python waits for the first byte of a message within the timeout, then
  // for the rest without one, so a writer that dies half-way through a
  // message (the feeder's process killed) leaves get() waiting forever: the
  // pipe never reaches end of file while this process holds its write end.
  // Here the timeout covers the whole message.  A message that has begun is
  // still waited for after the deadline as long as its bytes keep coming
  // (kStall apart at most), so a live writer's item is not refused for being
  // large; if they stop, get() raises Empty, this process keeps what came and
  // _rlock, and its next get() reads on.  Without a timeout, get() waits for
  // the whole message, as Python's does.
  constexpr double kStall = 1.0;
  std::optional<double> deadline;
  if (!block) {
    deadline = os::monotonic();
  } else if (timeout) {
    deadline = os::monotonic() + std::max(*timeout, 0.0);
  }
  std::unique_lock local(self.reading, std::defer_lock);
  if (!deadline) {
    local.lock();
  } else if (!local.try_lock_for(std::chrono::duration<double>(std::max(*deadline - os::monotonic(), 0.0)))) {
    throw Empty();
  }
  if (!self.rlock_held) {
    std::optional<double> remaining;
    if (deadline) remaining = std::max(*deadline - os::monotonic(), 0.0);
    if (!self.rlock.acquire(block, remaining)) throw Empty();
    self.rlock_held = true;
  }
  try {
    for (std::optional<double> until = deadline;; until = os::monotonic() + kStall) {
      std::size_t before = self.partial.progress();
      if (self.ends->reader._recv_bytes_resume(self.partial, until)) break;
      if (!self.partial.started() || self.partial.progress() == before) throw Empty();
    }
  } catch (const Empty&) {
    // Nothing came, or the message stopped half-way: keep _rlock only if a
    // part of a message is held.
    if (!self.partial.started()) {
      self.rlock_held = false;
      self.rlock.release();
    }
    throw;
  } catch (...) {
    // End of file or a read error: the message is lost either way.
    self.partial = {};
    self.rlock_held = false;
    self.rlock.release();
    throw;
  }
  std::string res = std::move(self.partial.payload);
  self.partial = {};
  self.rlock_held = false;
  self.rlock.release();
  self.sem.release();
  // Unpickle after having released the lock (Python's comment).
  return reduction::ForkingPickler::loads(res);
}
// [queue-get]

int Queue::qsize() const {
  return state_->maxsize - state_->sem._get_value();
}

bool Queue::empty() const { return !state_->ends->reader.poll(); }

bool Queue::full() const { return state_->sem._is_zero(); }

void Queue::close() {
  State& self = *state_;
  self.closed = true;
  // Python: close = self._close; if close: self._close = None; close().
  if (self.close.still_active()) self.close();
}

void Queue::join_thread() {
  util::debug("Queue.join_thread()");
  if (!state_->closed) throw AssertionError("Queue " + repr() + " not closed");
  if (state_->jointhread.still_active()) state_->jointhread();
}

void Queue::cancel_join_thread() {
  util::debug("Queue.cancel_join_thread()");
  state_->joincancelled = true;
  state_->jointhread.cancel();
}

void Queue::_set_on_queue_feeder_error(FeederErrorHook hook) { state_->on_error = std::move(hook); }
void Queue::_set_ignore_epipe(bool ignore) { state_->ignore_epipe = ignore; }
int Queue::_maxsize() const { return state_->maxsize; }
connection::Connection& Queue::_reader() const { return state_->ends->reader; }
connection::Connection& Queue::_writer() const { return state_->ends->writer; }
synchronize::Lock& Queue::_rlock() const { return state_->rlock; }
synchronize::Lock& Queue::_wlock() const { return state_->wlock; }
synchronize::BoundedSemaphore& Queue::_sem() const { return state_->sem; }
bool Queue::_feeder_started() const { return state_->feeder->thread != nullptr; }

// ------------------------------------------------------------------ pickling

namespace {
const bool queues_globals_registered = [] {
  for (const char* name : {"Queue", "JoinableQueue", "SimpleQueue"}) {
    reduction::ForkingPickler::register_global("multiprocessing.queues", name);
  }
  return true;
}();

// A Reduced that is this very object in memory (fork) and, pickled, checks
// that a child is being spawned (Python: context.assert_spawning(self)).
Object spawning_only(const char* qualname, Object::Tuple state, std::shared_ptr<const void> local) {
  Object::Reduced plain{{"multiprocessing.queues", qualname}, {}, true, {Object(std::move(state))}};
  Object::Reduced r = plain;
  r.local = std::move(local);
  r.reduce = [plain = Object(std::move(plain))] {
    // Python's message names the class: "Queue objects should only be shared
    // between processes through inheritance".
    assert_spawning("Queue");
    return plain;
  };
  return r;
}

const Object::Tuple& state_of(const Object& obj, const char* qualname, std::size_t size) {
  const Object::Reduced* r = obj.reduced();
  const Object::Tuple* t = nullptr;
  if (r != nullptr && r->callable.module == "multiprocessing.queues" && r->state.size() == 1) {
    t = std::get_if<Object::Tuple>(&r->state[0].variant());
  }
  if (t == nullptr || t->items.size() != size) {
    throw UnpicklingError(std::string("expected a pickled ") + qualname + ", got " + obj.repr());
  }
  return *t;
}
}  // namespace

Object Queue::_reduce() const {
  const State& self = *state_;
  Object::Tuple state{{self.ignore_epipe, std::int64_t{self.maxsize}, Object(self.ends->reader),
                       Object(self.ends->writer), Object(self.rlock), Object(self.wlock),
                       Object(self.sem), std::int64_t{self.opid}}};
  const char* qualname = "Queue";
  if (self.cond) {
    // Python: JoinableQueue.__getstate__ = Queue's + (self._cond, self._unfinished_tasks).
    state.items.emplace_back(*self.cond);
    state.items.emplace_back(*self.unfinished_tasks);
    qualname = "JoinableQueue";
  }
  return spawning_only(qualname, std::move(state), state_);
}

Queue Queue::_rebuild(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r != nullptr && r->local && r->callable.module == "multiprocessing.queues" &&
      (r->callable.qualname == "Queue" || r->callable.qualname == "JoinableQueue")) {
    // In memory (fork): this same queue, its feeder state already reset.
    return Queue(std::static_pointer_cast<State>(std::const_pointer_cast<void>(r->local)));
  }
  bool joinable = r != nullptr && r->callable.qualname == "JoinableQueue";
  const Object::Tuple& t = state_of(obj, joinable ? "JoinableQueue" : "Queue", joinable ? 10 : 8);
  // Python: __setstate__, then _reset().
  auto state = std::make_shared<State>(t.items[4].as<synchronize::Lock>(), t.items[5].as<synchronize::Lock>(),
                                       t.items[6].as<synchronize::BoundedSemaphore>());
  state->ignore_epipe = t.items[0].as<bool>();
  state->maxsize = t.items[1].as<int>();
  state->ends = std::make_shared<Ends>(Ends{t.items[2].as<connection::Connection>(),
                                            t.items[3].as<connection::Connection>()});
  state->opid = t.items[7].as<pid_t>();
  if (joinable) {
    state->cond.emplace(t.items[8].as<synchronize::Condition>());
    state->unfinished_tasks.emplace(t.items[9].as<synchronize::Semaphore>());
  }
  State* raw = state.get();
  state->after_fork = util::register_after_fork([raw] { raw->reset_after_fork(); });
  return Queue(std::move(state));
}

// ------------------------------------------------------------------ JoinableQueue

JoinableQueue::JoinableQueue(int maxsize, BaseContext* ctx)
    : Queue(make_state(maxsize, ctx, true)) {}

// [joinable-task-done]
void JoinableQueue::task_done() {
  State& self = *state_;
  std::lock_guard guard(*self.cond);
  if (!self.unfinished_tasks->acquire(false)) {
    throw ValueError("task_done() called too many times");
  }
  if (self.unfinished_tasks->_is_zero()) self.cond->notify_all();
}

void JoinableQueue::join() {
  State& self = *state_;
  std::lock_guard guard(*self.cond);
  // Python checks once (`if`, not `while`): notify_all comes only at zero.
  if (!self.unfinished_tasks->_is_zero()) self.cond->wait();
}
// [joinable-task-done]

JoinableQueue JoinableQueue::_rebuild(const Object& obj) {
  Queue q = Queue::_rebuild(obj);
  if (!q.state_->cond) {
    throw UnpicklingError("expected a pickled JoinableQueue, got " + obj.repr());
  }
  return JoinableQueue(std::move(q.state_));
}

// ------------------------------------------------------------------ SimpleQueue

struct SimpleQueue::State {
  connection::Connection reader;  // Python: _reader
  connection::Connection writer;  // Python: _writer
  synchronize::Lock rlock;        // Python: _rlock
  synchronize::Lock wlock;        // Python: _wlock
};

SimpleQueue::SimpleQueue(BaseContext* ctx) {
  if (ctx == nullptr) ctx = &get_context();
  auto [reader, writer] = connection::Pipe(/*duplex=*/false);
  state_ = std::make_shared<State>(State{std::move(reader), std::move(writer), ctx->Lock(), ctx->Lock()});
}

// [simple-queue-put-get]
void SimpleQueue::put(const Object& obj) {
  // Serialize the data before acquiring the lock (Python's comment).
  _put_bytes(reduction::ForkingPickler::dumps(obj));
}

void SimpleQueue::_put_bytes(std::string_view pickled) {
  std::lock_guard guard(state_->wlock);
  state_->writer.send_bytes(pickled);
}

Object SimpleQueue::get() {
  std::string res;
  _get_bytes(res);
  // Unserialize the data after having released the lock (Python's comment).
  return reduction::ForkingPickler::loads(res);
}

void SimpleQueue::_get_bytes(std::string& buffer) {
  std::lock_guard guard(state_->rlock);
  state_->reader.recv_bytes_reusing(buffer);
}
// [simple-queue-put-get]

bool SimpleQueue::empty() const { return !state_->reader.poll(); }

void SimpleQueue::close() {
  state_->reader.close();
  state_->writer.close();
}

connection::Connection& SimpleQueue::_reader() const { return state_->reader; }
connection::Connection& SimpleQueue::_writer() const { return state_->writer; }
synchronize::Lock& SimpleQueue::_rlock() const { return state_->rlock; }
synchronize::Lock& SimpleQueue::_wlock() const { return state_->wlock; }

Object SimpleQueue::_reduce() const {
  const State& self = *state_;
  return spawning_only("SimpleQueue",
                       Object::Tuple{{Object(self.reader), Object(self.writer), Object(self.rlock),
                                      Object(self.wlock)}},
                       state_);
}

SimpleQueue SimpleQueue::_rebuild(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r != nullptr && r->local && r->callable.qualname == "SimpleQueue") {
    return SimpleQueue(std::static_pointer_cast<State>(std::const_pointer_cast<void>(r->local)));
  }
  const Object::Tuple& t = state_of(obj, "SimpleQueue", 4);
  return SimpleQueue(std::make_shared<State>(State{t.items[0].as<connection::Connection>(),
                                                   t.items[1].as<connection::Connection>(),
                                                   t.items[2].as<synchronize::Lock>(),
                                                   t.items[3].as<synchronize::Lock>()}));
}

}  // namespace multiprocessing::queues
