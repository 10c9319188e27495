// multiprocessing/pool.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/pool.py: Pool (worker processes fed
// by one task pipe and answering on one result pipe, run by three handler
// threads), ThreadPool (the same with threads), and the results they hand
// back: ApplyResult (AsyncResult), MapResult, IMapIterator,
// IMapUnorderedIterator.
//
// The machinery, as in Python:
//   _inqueue, _outqueue  two SimpleQueues: tasks to the workers, results back
//   _taskqueue           an in-process queue of task sequences, filled by
//                        apply_async/map_async/imap... in the caller's thread
//   _cache               job number -> the result object waiting for it
//   worker handler       keeps `processes` workers alive (replacing those that
//                        exit, as after maxtasksperchild tasks)
//   task handler         takes task sequences from _taskqueue and writes
//                        each task, pickled, to _inqueue
//   result handler       reads (job, i, (success, value)) from _outqueue and
//                        hands it to _cache[job]; a caller waiting in get()
//                        for a plain apply_async result reads in its place
//                        when nobody else reads (one wake-up less per call)
//   worker()             in each worker: get a task, call it, put the result
//
// A task's function crosses to the workers by name, as Python pickles a
// function, under every start method (the task travels through a pipe even
// under fork): register it with MP_REGISTER_TARGET.  A lambda is refused when
// its task is sent, and that task's result raises the PicklingError, as in
// Python.  ThreadPool takes any callable.
//
// Beyond CPython: a worker that dies while running a task (killed by a
// signal, or exiting) fails that task's result with WorkerLostError naming
// the worker and its exit code; the pool replaces the worker and serves the
// other tasks (CPython waits for the lost result forever).  terminate() takes
// none of the locks the workers share, so a worker killed while holding one
// cannot make it hang.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/reduction.hpp"

namespace multiprocessing {
class BaseContext;
}

namespace multiprocessing::pool {

/// Python: the pool states INIT, RUN, CLOSE, TERMINATE.
inline constexpr const char* INIT = "INIT";
inline constexpr const char* RUN = "RUN";
inline constexpr const char* CLOSE = "CLOSE";
inline constexpr const char* TERMINATE = "TERMINATE";

// MaybeEncodingError and WorkerLostError are declared in exceptions.hpp, so
// that either can be rebuilt from another process.  Python's RemoteTraceback
// (the `__cause__` of an exception re-raised from a worker) is the text
// Exception::remote_traceback() returns.

/// Python: apply_async's callback, called in the result handler thread with
/// the result (map_async's: with the list of results).
using Callback = std::function<void(const Object& result)>;
/// Python: error_callback, called with the exception instead.
using ErrorCallback = std::function<void(const std::exception& error)>;

namespace detail {
struct ResultBase;
struct PoolState;
}  // namespace detail

/// Python: pool.ApplyResult (also AsyncResult): what apply_async returns.  A
/// handle: copies refer to the same result.
class ApplyResult {
 public:
  /// Python: ready(): the result (or the error) has arrived.  For a plain
  /// apply_async result that no thread is reading, it first reads what the
  /// result pipe holds, without waiting (Python's result handler reads
  /// every result as it comes).
  bool ready() const;
  /// Python: successful(): it arrived without an error.
  /// \throws ValueError "<repr> not ready".
  bool successful() const;
  /// Python: wait(timeout=None): until ready, or `timeout` seconds.  For a
  /// plain apply_async result (no callbacks) of a process pool, the calling
  /// thread reads the pool's results itself while nobody else does.
  void wait(std::optional<double> timeout = std::nullopt) const;
  /// Python: get(timeout=None): the result; the task's exception re-raised
  /// here, with its type and message (and remote_traceback()).
  /// \throws TimeoutError if it has not arrived within `timeout` seconds.
  Object get(std::optional<double> timeout = std::nullopt) const;
  /// Python: the default repr, "<multiprocessing.pool.ApplyResult object at 0x...>".
  std::string repr() const;
  /// Python: _job.
  std::int64_t _job() const;

  explicit ApplyResult(std::shared_ptr<detail::ResultBase> impl) : impl_(std::move(impl)) {}

 protected:
  friend class Pool;  // map() takes its own result's list without a copy
  std::shared_ptr<detail::ResultBase> impl_;
};

/// Python: pool.AsyncResult, another name for ApplyResult (bpo-17805).
using AsyncResult = ApplyResult;

/// Python: pool.MapResult: what map_async/starmap_async return; get()
/// gives the list of results, in the order of the inputs.
class MapResult : public ApplyResult {
 public:
  using ApplyResult::ApplyResult;
  /// The results as a C++ vector (get() gives them as an Object list).
  Object::List get_list(std::optional<double> timeout = std::nullopt) const;
};

/// Python: pool.IMapIterator (imap) and IMapUnorderedIterator
/// (imap_unordered): results one at a time, as they come in.
///   for (const Object& r : pool.imap(f, items)) ...
class IMapIterator {
 public:
  /// Python: next(timeout=None): the next result; the task's exception
  /// re-raised.  \throws TimeoutError after `timeout` seconds; StopIteration
  /// is `std::nullopt` here.
  std::optional<Object> next(std::optional<double> timeout = std::nullopt);
  /// Python: _job.
  std::int64_t _job() const;

  /// Range-for over the remaining results (each next() without a timeout).
  class iterator {
   public:
    using value_type = Object;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(IMapIterator* it) : it_(it) { ++*this; }
    const Object& operator*() const { return *current_; }
    /// The next result (IMapIterator::next()); the end once there is none.
    iterator& operator++();
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.it_ == b.it_; }

   private:
    IMapIterator* it_ = nullptr;
    std::optional<Object> current_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  IMapIterator(std::shared_ptr<detail::ResultBase> impl, bool chunked)
      : impl_(std::move(impl)), chunked_(chunked) {}

 private:
  std::shared_ptr<detail::ResultBase> impl_;
  bool chunked_ = false;  // each result is a chunk of results (chunksize > 1)
  std::vector<Object> pending_;
  std::size_t pending_pos_ = 0;
};
using IMapUnorderedIterator = IMapIterator;

/// Python: pool.Pool(processes=None, initializer=None, initargs=(),
/// maxtasksperchild=None, context=None).  Move-only; the destructor
/// terminates the pool, as leaving Python's `with Pool() as p:` does.
class Pool {
 public:
  /// \param processes        workers to keep (default: cpu_count()).
  /// \param initializer      called as initializer(*initargs) first in each worker.
  /// \param initargs         its arguments.
  /// \param maxtasksperchild a worker exits after this many tasks and is
  ///                         replaced (default: never).
  /// \param context          the start method's context (default: the default one).
  /// \throws ValueError "Number of processes must be at least 1",
  ///   "maxtasksperchild must be a positive int or None"; OSError if a
  ///   worker cannot be started (those started are terminated).
  explicit Pool(std::optional<int> processes = std::nullopt, Target initializer = {},
                Args initargs = {}, std::optional<int> maxtasksperchild = std::nullopt,
                BaseContext* context = nullptr);
  ~Pool();
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) = delete;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Python: apply(func, args=()): func(*args) in a worker; its result.
  Object apply(const Target& func, const Args& args = {});
  /// Python: apply_async(func, args=(), callback=None, error_callback=None).
  /// \throws ValueError "Pool not running".
  ApplyResult apply_async(const Target& func, const Args& args = {}, Callback callback = {},
                          ErrorCallback error_callback = {});
  /// Python: map(func, iterable, chunksize=None): [func(x) for x in iterable],
  /// computed in chunks; chunksize by default len / (4 * workers), rounded up.
  Object::List map(const Target& func, const Object::List& iterable,
                   std::optional<int> chunksize = std::nullopt);
  /// Python: map_async(func, iterable, chunksize=None, callback=None, error_callback=None).
  MapResult map_async(const Target& func, const Object::List& iterable,
                      std::optional<int> chunksize = std::nullopt, Callback callback = {},
                      ErrorCallback error_callback = {});
  /// Python: starmap(func, iterable, chunksize=None): func(*args) for each
  /// args (a tuple or list) in iterable.
  Object::List starmap(const Target& func, const Object::List& iterable,
                       std::optional<int> chunksize = std::nullopt);
  /// Python: starmap_async(...).
  MapResult starmap_async(const Target& func, const Object::List& iterable,
                          std::optional<int> chunksize = std::nullopt, Callback callback = {},
                          ErrorCallback error_callback = {});
  /// Python: imap(func, iterable, chunksize=1): results in order, as they come.
  /// \throws ValueError "Chunksize must be 1+, not 0".
  IMapIterator imap(const Target& func, const Object::List& iterable, int chunksize = 1);
  /// Python: imap_unordered(func, iterable, chunksize=1): results in the
  /// order they are ready.
  IMapUnorderedIterator imap_unordered(const Target& func, const Object::List& iterable,
                                       int chunksize = 1);

  /// The same with any C++ vector as the iterable: `pool.map(f, std::vector<int>{1, 2})`.
  template <class T>
  Object::List map(const Target& func, const std::vector<T>& iterable,
                   std::optional<int> chunksize = std::nullopt) {
    return map(func, to_list(iterable), chunksize);
  }
  template <class T>
  IMapIterator imap(const Target& func, const std::vector<T>& iterable, int chunksize = 1) {
    return imap(func, to_list(iterable), chunksize);
  }
  template <class T>
  IMapUnorderedIterator imap_unordered(const Target& func, const std::vector<T>& iterable,
                                       int chunksize = 1) {
    return imap_unordered(func, to_list(iterable), chunksize);
  }

  /// Python: close(): accept no more tasks; workers exit once all are done.
  void close();
  /// Python: terminate(): stop the workers now (SIGTERM), without finishing
  /// outstanding work.  Results not yet in stay unready.
  void terminate();
  /// Python: join(): wait for the handler threads and the workers to end.
  /// \throws ValueError "Pool is still running" before close()/terminate().
  void join();

  /// Python: "<multiprocessing.pool.Pool state=RUN pool_size=4>".
  std::string repr() const;
  /// Python: _state ("INIT", "RUN", "CLOSE", "TERMINATE").
  std::string _state() const;
  /// Python: [w.pid for w in pool._pool]: the workers' pids now (ThreadPool:
  /// empty).
  std::vector<pid_t> _worker_pids() const;
  /// Python: len(pool._pool).
  std::size_t _pool_size() const;

 protected:
  /// For ThreadPool.
  struct ThreadWorkers {};
  Pool(ThreadWorkers, std::optional<int> processes, Target initializer, Args initargs);

 private:
  template <class T>
  static Object::List to_list(const std::vector<T>& items) {
    Object::List list;
    list.reserve(items.size());
    for (const T& item : items) list.emplace_back(item);
    return list;
  }
  // `borrow`: the tasks are cut from `iterable` itself, not from a copy
  // (map() and starmap(), which wait for the result, pass true).
  MapResult _map_async(const Target& func, const Object::List& iterable, bool star,
                       std::optional<int> chunksize, Callback callback, ErrorCallback error_callback,
                       bool borrow = false);
  IMapIterator _imap(const Target& func, const Object::List& iterable, int chunksize, bool ordered);
  void _check_running() const;

  std::shared_ptr<detail::PoolState> state_;
};

/// Python: mapstar(args) = list(map(*args)), args being (func, chunk): what a
/// worker runs for each chunk of a map.
Object mapstar(const Object& args);
/// Python: starmapstar(args): func(*x) for each x of the chunk (starmap's).
Object starmapstar(const Object& args);

/// Python: pool.worker(inqueue, outqueue, initializer, initargs, maxtasks,
/// wrap_exception), what each worker process runs: get a task, call it, put
/// the result, until a None, EOF or `maxtasks` tasks.  `slots` and `slot` are
/// the port's: where it says which task it runs (see WorkerLostError).
void worker(queues::SimpleQueue inqueue, queues::SimpleQueue outqueue, Target initializer,
            Args initargs, std::optional<std::int64_t> maxtasks, bool wrap_exception,
            const Object& slots, std::int64_t slot);

/// Python: pool.ThreadPool(processes=None, initializer=None, initargs=()):
/// the Pool interface with threads (dummy.Process) as workers and in-memory
/// queues: nothing is pickled, so any callable works, lambdas included.
class ThreadPool : public Pool {
 public:
  explicit ThreadPool(std::optional<int> processes = std::nullopt, Target initializer = {},
                      Args initargs = {})
      : Pool(ThreadWorkers{}, processes, std::move(initializer), std::move(initargs)) {}
};

}  // namespace multiprocessing::pool
