// multiprocessing/pool.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/pool.py; see pool.hpp.
#include "multiprocessing/pool.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <new>
#include <sstream>
#include <thread>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/dummy/dummy.hpp"
#include "multiprocessing/heap.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::pool {

namespace {

// Python: job_counter = itertools.count().
std::atomic<std::int64_t> job_counter{0};

// A tuple made by moving its items in.  `Object::Tuple{{a, b}}` copies each
// item out of the initializer list: a chunk of a map, or a worker's list of
// results, would be copied whole once per level of nesting.
template <class... T>
Object tuple_of(T&&... items) {
  Object::Tuple t;
  t.items.reserve(sizeof...(T));
  (t.items.emplace_back(std::forward<T>(items)), ...);
  return Object(std::move(t));
}

const Object::Tuple& as_tuple(const Object& obj, std::size_t size, const char* what) {
  const auto* t = std::get_if<Object::Tuple>(&obj.variant());
  if (t == nullptr || t->items.size() != size) {
    throw ValueError(std::string("malformed ") + what + ": " + obj.repr());
  }
  return *t;
}

// A message between the pool and its workers, with its run of ints: where
// `value` holds reduction::int_run_placeholder, `ints` stand (as a tuple: a
// map's chunk; as a list: its results).  Only a process pool's map makes
// them, so that a chunk of ints crosses without an Object per int (see
// reduction::loads_with_ints); every other message has no run.
struct Message {
  Object value = {};
  std::vector<std::int64_t> ints = {};
  bool has_run = false;
};

// The value with its placeholder replaced by the ints themselves, as
// loads() would have read it.
Object with_ints(Object value, const std::vector<std::int64_t>& ints) {
  if (const Object::Global* g = value.global(); g != nullptr && g->module.empty()) {
    std::vector<Object> items(ints.begin(), ints.end());
    if (*g == reduction::int_run_placeholder(true)) return Object::Tuple{std::move(items)};
    if (*g == reduction::int_run_placeholder(false)) return Object::List(std::move(items));
  }
  if (auto* t = std::get_if<Object::Tuple>(&value.variant())) {
    for (Object& item : t->items) item = with_ints(std::move(item), ints);
  } else if (auto* l = std::get_if<Object::List>(&value.variant())) {
    for (Object& item : *l) item = with_ints(std::move(item), ints);
  }
  return value;
}

// A buffer that message after message is read into keeps its room (no
// allocation per message), up to this much: the room of a larger message
// goes back to the allocator once it is read.
constexpr std::size_t kKeptReadRoom = std::size_t{1} << 20;
void trim_read_buffer(std::string& buffer) {
  if (buffer.capacity() > kKeptReadRoom) std::string().swap(buffer);
}

// Unpickle a message, with its run of ints if it has one.
Message loads_message(std::string_view pickled) {
  Message m;
  if (std::optional<Object> value = reduction::loads_with_ints(pickled, m.ints)) {
    m.value = std::move(*value);
    m.has_run = !m.ints.empty();
    return m;
  }
  m.ints.clear();
  m.value = reduction::ForkingPickler::loads(pickled);
  return m;
}

// ------------------------------------------------------------------ errors

// Python: ExceptionWithTraceback(exc, tb).__reduce__() -> rebuild_exc(exc, tb):
// the exception with its remote traceback as text.  C++ keeps no traceback:
// the text says where the exception was raised instead.
Object exception_with_traceback(const std::exception& e, const std::string& where) {
  std::string tb = "\n\"\"\"\nTraceback (most recent call last):\n  " + where + "\n" +
                   exception_type_name(e) + ": " + e.what() + "\n\"\"\"";
  return Object::Reduced{{"multiprocessing.pool", "rebuild_exc"},
                         {reduction::_reduce_exception(e), tb}};
}

// Python: `raise self._value`: the error a result holds, thrown here.
[[noreturn]] void raise_value(const Object& value) {
  const Object::Reduced* r = value.reduced();
  if (r != nullptr && r->callable.qualname == "rebuild_exc" && r->args.size() == 2) {
    // Python: rebuild_exc(exc, tb): exc.__cause__ = RemoteTraceback(tb).
    reduction::_raise_exception(r->args[0], r->args[1].as<std::string>());
  }
  reduction::_raise_exception(value);
}

// Run `f` and hand its exception to `error_callback` as the C++ exception.
void call_error_callback(const ErrorCallback& error_callback, const Object& value) {
  try {
    raise_value(value);
  } catch (const std::exception& e) {
    error_callback(e);
  }
}

const bool pool_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.pool", "rebuild_exc");
  return true;
}();

}  // namespace

// ------------------------------------------------------------------ the functions workers run

/// Python: mapstar(args) = list(map(*args)): args is (func, chunk).
Object mapstar(const Object& args) {
  const Object::Tuple& t = as_tuple(args, 2, "mapstar task");
  Target func = t.items[0].as<Target>();
  const auto* chunk = std::get_if<Object::Tuple>(&t.items[1].variant());
  if (chunk == nullptr) throw TypeError("mapstar expects a tuple of items");
  Object::List results;
  results.reserve(chunk->items.size());
  Args call(1);
  for (const Object& x : chunk->items) {
    call[0] = x;
    results.push_back(func(call));
  }
  return results;
}

/// Python: starmapstar(args) = list(itertools.starmap(args[0], args[1])).
Object starmapstar(const Object& args) {
  const Object::Tuple& t = as_tuple(args, 2, "starmapstar task");
  Target func = t.items[0].as<Target>();
  const auto* chunk = std::get_if<Object::Tuple>(&t.items[1].variant());
  if (chunk == nullptr) throw TypeError("starmapstar expects a tuple of argument tuples");
  Object::List results;
  results.reserve(chunk->items.size());
  for (const Object& x : chunk->items) results.push_back(func(x.as<Args>()));
  return results;
}

namespace {

// Where each worker says which task it runs: one slot per worker, in shared
// memory (an Arena, which crosses to spawned workers by fd).  A worker marks
// its slot busy with (job, i) before calling the function and idle after
// sending the result, so that when it dies the pool knows which result to
// fail.  (Not in CPython: its pool cannot tell.)
struct WorkerSlot {
  std::atomic<std::int64_t> job;
  std::atomic<std::int64_t> index;
  std::atomic<std::int32_t> busy;
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free, "slots live in shared memory");

// The shared table starts with the number of messages the workers have
// taken from _inqueue (see PoolState::try_put_now), on a line of its own;
// the slots follow.
constexpr std::size_t kSlotsOffset = 64;
std::atomic<std::uint64_t>* tasks_taken_at(std::byte* base) {
  return std::launder(reinterpret_cast<std::atomic<std::uint64_t>*>(base));
}
WorkerSlot* slot_at(std::byte* base, std::int64_t slot) {
  return std::launder(
      reinterpret_cast<WorkerSlot*>(base + kSlotsOffset + static_cast<std::size_t>(slot) * sizeof(WorkerSlot)));
}

// Python: worker(inqueue, outqueue, initializer, initargs, maxtasks,
// wrap_exception): the loop every worker runs, here with its queue
// operations given as functions so that ThreadPool's threads share it.
// Python's `try: task = get() except (EOFError, OSError): ... exit`: the
// next message, or nullopt when the pipe is gone (the other side closed it).
// A message that cannot be read at all (a worker killed in the middle of
// writing one) ends the reader too: Python's thread would die of it.
template <class Get>
auto get_or_gone(const Get& get, const char* who) -> std::optional<decltype(get())> {
  try {
    return get();
  } catch (const EOFError&) {
  } catch (const OSError&) {
  } catch (const std::exception& e) {
    util::sub_warning(std::string(who) + " could not read a message: " + e.what());
    return std::nullopt;
  }
  util::debug(std::string(who) + " got EOFError or OSError -- exiting");
  return std::nullopt;
}

// A map's chunk of ints, called the quick way: when the task is
// (job, i, mapstar, ((func, <int tuple>),), {}) and func a plain function of
// one int returning an int (Target::call_ints), each int of `chunk` is
// replaced by what the function returns for it (in place: the results need
// no vector of their own) and `result` becomes (True, <int list>), with the
// function looked up by name once for the whole chunk.  False, having called
// nothing, when the task is anything else: the worker then calls it as any task.
bool run_int_chunk(const Object::Tuple& task, std::vector<std::int64_t>& chunk, Object& result) {
  const Object::Global* mapper = task.items[2].global();
  if (mapper == nullptr || mapper->module != "multiprocessing.pool" || mapper->qualname != "mapstar") return false;
  const auto* args = std::get_if<Object::Tuple>(&task.items[3].variant());
  if (args == nullptr || args->items.size() != 1) return false;
  const auto* pair = std::get_if<Object::Tuple>(&args->items[0].variant());
  if (pair == nullptr || pair->items.size() != 2) return false;
  const Object::Global* run = pair->items[1].global();
  if (run == nullptr || *run != reduction::int_run_placeholder(true)) return false;
  Target func = pair->items[0].as<Target>();
  if (!func.call_ints(chunk.data(), chunk.data(), chunk.size())) return false;
  result = tuple_of(true, Object(reduction::int_run_placeholder(false)));
  return true;
}

// [pool-worker-loop]
void worker_loop(const std::function<Message()>& get, const std::function<void(const Message&)>& put,
                 const Target& initializer, const Args& initargs, std::optional<std::int64_t> maxtasks,
                 bool wrap_exception, WorkerSlot* slot) {
  if (maxtasks && *maxtasks < 1) {
    throw AssertionError("Maxtasks " + std::to_string(*maxtasks) + " is not valid");
  }
  if (initializer) initializer(initargs);

  std::int64_t completed = 0;
  while (!maxtasks || completed < *maxtasks) {
    std::optional<Message> next = get_or_gone(get, "worker");
    if (!next) break;
    Object task = std::move(next->value);
    if (task.is_none()) {
      util::debug("worker got sentinel -- exiting");
      break;
    }
    // job, i, func, args, kwds = task
    const Object::Tuple& t = as_tuple(task, 5, "task");
    std::int64_t job = t.items[0].as<std::int64_t>();
    std::int64_t i = t.items[1].as<std::int64_t>();
    if (util::trace_enabled()) util::_trace("Pool worker runs task: job " + std::to_string(job) + ", index " + std::to_string(i));
    if (slot != nullptr) {
      slot->job.store(job, std::memory_order_relaxed);
      slot->index.store(i, std::memory_order_relaxed);
      slot->busy.store(1, std::memory_order_release);
    }
    Message out;
    Object result;
    try {
      if (!(next->has_run && run_int_chunk(t, next->ints, result))) {
        if (next->has_run) task = with_ints(std::move(task), next->ints);
        const Object::Tuple& call = as_tuple(task, 5, "task");
        Target func = call.items[2].as<Target>();
        const auto* args = std::get_if<Object::Tuple>(&call.items[3].variant());
        if (args == nullptr) throw TypeError("a task's arguments must be a tuple");
        result = tuple_of(true, func(args->items));
      } else {
        out.ints = std::move(next->ints);
        out.has_run = true;
      }
    } catch (const std::exception& e) {
      Object error = wrap_exception ? exception_with_traceback(
                                          e, "(C++ keeps no traceback) raised in " +
                                                 current_process().name() + ", pid " +
                                                 std::to_string(os::getpid()))
                                    : reduction::_reduce_exception(e);
      result = Object::Tuple{{false, error}};
      out.has_run = false;
    }
    out.value = tuple_of(job, i, std::move(result));
    try {
      put(out);
    } catch (const std::exception& e) {
      // Python: MaybeEncodingError(e, result[1]).
      const Object& sent = std::get<Object::Tuple>(out.value.variant()).items[2];
      const Object& value = std::get<Object::Tuple>(sent.variant()).items[1];
      pool::MaybeEncodingError wrapped("Error sending result: '" + value.repr() + "'. Reason: '" +
                                       exception_type_name(e) + "(" + Object(std::string(e.what())).repr() +
                                       ")'");
      util::debug(std::string("Possible encoding error while sending result: ") + wrapped.what());
      put(Message{Object::Tuple{{job, i, Object::Tuple{{false, reduction::_reduce_exception(wrapped)}}}}});
    }
    if (slot != nullptr) slot->busy.store(0, std::memory_order_release);
    ++completed;
  }
  util::debug("worker exiting after " + std::to_string(completed) + " tasks");
}
// [pool-worker-loop]

}  // namespace

/// Python: pool.worker, the target of each worker process.
void worker(queues::SimpleQueue inqueue, queues::SimpleQueue outqueue, Target initializer,
            Args initargs, std::optional<std::int64_t> maxtasks, bool wrap_exception,
            const Object& slots, std::int64_t slot) {
  // The worker only reads tasks and writes results: close the ends it does
  // not use, so that EOF reaches the right side.
  inqueue._writer().close();
  outqueue._reader().close();
  std::shared_ptr<heap::Arena> arena = heap::_rebuild_arena(slots);
  // Python's get = inqueue.get, put = outqueue.put.
  std::atomic<std::uint64_t>* taken = tasks_taken_at(arena->buffer());
  // Every task is read into one buffer, whose room is reused.
  std::string pickled;
  worker_loop([&inqueue, &pickled, taken] {
                inqueue._get_bytes(pickled);
                taken->fetch_add(1, std::memory_order_release);  // one message less in the pipe
                Message m = loads_message(pickled);
                trim_read_buffer(pickled);
                return m;
              },
              [&outqueue](const Message& m) {
                outqueue._put_bytes(m.has_run ? reduction::dumps_with_ints(m.value, m.ints.data(), m.ints.size())
                                              : reduction::ForkingPickler::dumps(m.value));
              },
              initializer, initargs, maxtasks, wrap_exception, slot_at(arena->buffer(), slot));
}

}  // namespace multiprocessing::pool

// The functions a task names cross by name, as Python pickles them.
namespace {
const bool pool_targets_registered = [] {
  using namespace multiprocessing;
  spawn::register_target("multiprocessing.pool.worker", Target(&pool::worker));
  spawn::register_target("multiprocessing.pool.mapstar", Target(&pool::mapstar));
  spawn::register_target("multiprocessing.pool.starmapstar", Target(&pool::starmapstar));
  return true;
}();
}  // namespace

namespace multiprocessing::pool {

namespace detail {

// ------------------------------------------------------------------ results

struct PoolState;

// Python: the common part of ApplyResult, MapResult and IMapIterator: a job
// number, a place in the pool's cache, and _set(i, obj) for the result handler.
struct ResultBase {
  PoolState* cache_owner = nullptr;  // the pool's cache outlives every _set
  // The pool, for a get() that reads the results itself (see "the result
  // reader" in PoolState); weak, as a result may outlive its pool.
  std::weak_ptr<PoolState> pool;
  // The result handler must read for this job (a map, an imap, callbacks);
  // false for a plain apply_async, whose get() may read for it.
  bool wants_handler = true;
  // Its callbacks must run in the result handler thread, as in Python.
  bool runs_callbacks = false;
  std::int64_t job = job_counter.fetch_add(1);
  std::mutex mutex;
  std::condition_variable changed;

  virtual ~ResultBase() = default;
  // Python: _set(i, obj), obj being (success, value).
  virtual void _set(std::int64_t i, Object obj) = 0;
  // _set for a message with a run of ints (see Message): obj with its
  // placeholder replaced by the ints, unless the result can take them as they are.
  virtual void _set_ints(std::int64_t i, Object obj, std::vector<std::int64_t> ints) {
    _set(i, with_ints(std::move(obj), ints));
  }
  virtual bool ready() = 0;
  void _remove_from_cache();
};

// Python: ApplyResult.
struct ApplyImpl : ResultBase {
  bool is_ready = false;  // Python: self._event
  bool success = false;
  Object value;
  Callback callback;
  ErrorCallback error_callback;

  bool ready() override {
    std::lock_guard lock(mutex);
    return is_ready;
  }
  // Python: self._event.wait(timeout), until `deadline` (a monotonic time;
  // none: forever).
  void wait_ready(std::optional<double> deadline) {
    std::unique_lock lock(mutex);
    if (!deadline) return changed.wait(lock, [&] { return is_ready; });
    changed.wait_for(lock, std::chrono::duration<double>(std::max(0.0, *deadline - os::monotonic())),
                     [&] { return is_ready; });
  }
  void _set(std::int64_t, Object obj) override {
    {
      std::lock_guard lock(mutex);
      if (is_ready) return;  // a result already in (a worker lost after sending it)
      auto& t = std::get<Object::Tuple>(obj.variant());
      success = t.items[0].as<bool>();
      value = std::move(t.items[1]);
    }
    if (callback && success) callback(value);
    if (error_callback && !success) call_error_callback(error_callback, value);
    {
      std::lock_guard lock(mutex);
      is_ready = true;
    }
    changed.notify_all();
    _remove_from_cache();
  }
};

// Python: MapResult.
struct MapImpl : ApplyImpl {
  std::int64_t chunksize = 0;
  std::int64_t number_left = 0;
  std::vector<bool> chunk_done;  // port: a chunk is counted once
  // Python's self._value, built in order from each chunk's results: a list
  // of Objects, or the vector of ints the result handler read them into
  // (_set_ints, kept as it is), so that an int becomes an Object once.  A
  // chunk goes into `values` as soon as every chunk before it is in
  // (_extend), while the workers still run the later ones, so that little of
  // the building is left for after the last result.
  std::size_t length = 0;
  std::vector<Object::List> chunk_values;
  std::vector<bool> chunk_ints;
  std::vector<std::vector<std::int64_t>> chunk_int_values;
  std::size_t chunks_in_values = 0;
  Object::List values;

  // Under the mutex: count chunk i, once (false if it was counted already).
  bool _take_chunk(std::int64_t i) {
    if (i < 0 || i >= static_cast<std::int64_t>(chunk_done.size()) || chunk_done[static_cast<std::size_t>(i)]) return false;
    chunk_done[static_cast<std::size_t>(i)] = true;
    --number_left;
    return true;
  }

  void _set(std::int64_t i, Object obj) override {
    bool finished = false;
    {
      std::lock_guard lock(mutex);
      if (!_take_chunk(i)) return;
      auto& t = std::get<Object::Tuple>(obj.variant());
      bool ok = t.items[0].as<bool>();
      if (ok && success) {
        // self._value[i*chunksize:(i+1)*chunksize] = result (in _extend)
        auto* results = std::get_if<Object::List>(&t.items[1].variant());
        if (results != nullptr) chunk_values[static_cast<std::size_t>(i)] = std::move(*results);
      } else if (!ok && success) {
        success = false;  // only the first exception is kept
        value = std::move(t.items[1]);
      }
      finished = number_left == 0;
      _extend();
    }
    if (finished) _finish();
  }

  // Under the mutex: self._value[i*chunksize:(i+1)*chunksize] = result for
  // the chunks that are in, in order, from the first not yet in `values`.
  void _extend() {
    if (!success) return;
    if (values.capacity() == 0) values.reserve(length);
    for (std::size_t& c = chunks_in_values; c < chunk_done.size() && chunk_done[c]; ++c) {
      std::size_t start = c * static_cast<std::size_t>(chunksize);
      std::size_t stop = std::min(length, start + static_cast<std::size_t>(chunksize));
      if (chunk_ints[c]) {
        // One Object per int, made in place, with one check of the capacity.
        const std::vector<std::int64_t>& ints = chunk_int_values[c];
        auto count = static_cast<std::ptrdiff_t>(std::min(ints.size(), stop - start));
        values.insert(values.end(), ints.begin(), ints.begin() + count);
        values.resize(values.size() + (stop - start) - static_cast<std::size_t>(count));
        chunk_int_values[c] = {};
        continue;
      }
      Object::List& results = chunk_values[c];
      for (std::size_t k = 0; k < stop - start; ++k) {
        values.push_back(k < results.size() ? std::move(results[k]) : Object());
      }
      results = {};
    }
  }

  // The last chunk is in (and in `values`): the callbacks, then ready.
  void _finish() {
    if (success) {
      value = Object(std::move(values));
      if (callback) callback(value);
    } else if (error_callback) {
      call_error_callback(error_callback, value);
    }
    {
      std::lock_guard lock(mutex);
      is_ready = true;
    }
    changed.notify_all();
    _remove_from_cache();
  }

  // A chunk's results that arrive as a run of ints: (True, <int list>) goes
  // straight into the result list, without a list of Objects in between.
  void _set_ints(std::int64_t i, Object obj, std::vector<std::int64_t> ints) override {
    const auto* t = std::get_if<Object::Tuple>(&obj.variant());
    bool plain = t != nullptr && t->items.size() == 2 && t->items[0] == Object(true) &&
                 t->items[1].global() != nullptr && *t->items[1].global() == reduction::int_run_placeholder(false);
    if (!plain) return ApplyImpl::_set_ints(i, std::move(obj), std::move(ints));
    bool finished = false;
    {
      std::lock_guard lock(mutex);
      if (!_take_chunk(i)) return;
      if (success) {
        chunk_int_values[static_cast<std::size_t>(i)] = std::move(ints);
        chunk_ints[static_cast<std::size_t>(i)] = true;
      }
      finished = number_left == 0;
      _extend();
    }
    if (finished) _finish();
  }

  // map() and starmap() lend the caller's list to the task handler thread
  // (_map_async with borrow): `lent` is true from then until the task
  // handler drops the task sequence that reads it, which calls
  // _return_lent().  take_list() waits for it, so the caller frees its list
  // after the last read of it: the store (release) and the wait's load
  // (acquire) order the two, in a way ThreadSanitizer sees too.  Every
  // chunk's result being in already means every chunk was sent, so this
  // wait is at most for the task handler to finish its last write.
  std::atomic<bool> lent{false};
  void _return_lent() {
    lent.store(false, std::memory_order_release);
    lent.notify_all();
  }

  // Pool.map's end: wait, then move the list out rather than copy it as
  // get() must (the MapResult is map()'s own, nobody else can get() it).
  // Python returns the same list object; a copy here would cost the caller
  // a pass over every result.  Once ready, `value` and `success` change no
  // more, so they are read without the lock.
  Object::List take_list() {
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return is_ready; });
    }
    lent.wait(true, std::memory_order_acquire);
    if (!success) raise_value(value);
    return std::move(std::get<Object::List>(value.variant()));
  }
};

// Python: IMapIterator and IMapUnorderedIterator.
struct IMapImpl : ResultBase {
  bool unordered = false;
  std::deque<Object> items;                  // (success, value), ready to be taken
  std::int64_t index = 0;                    // Python: _index, how many arrived in order
  std::optional<std::int64_t> length;        // Python: _length, known once all tasks were sent
  std::map<std::int64_t, Object> unsorted;   // Python: _unsorted
  std::vector<bool> seen;                    // port: each i is taken once

  bool ready() override {
    std::lock_guard lock(mutex);
    return length && index == *length;
  }
  bool first_time(std::int64_t i) {
    if (i < 0) return false;
    if (static_cast<std::size_t>(i) >= seen.size()) seen.resize(static_cast<std::size_t>(i) + 1);
    if (seen[static_cast<std::size_t>(i)]) return false;
    seen[static_cast<std::size_t>(i)] = true;
    return true;
  }
  void _set(std::int64_t i, Object obj) override {
    bool done;
    {
      std::lock_guard lock(mutex);
      if (!first_time(i)) return;
      if (unordered || index == i) {
        items.push_back(std::move(obj));
        ++index;
        while (!unordered) {
          auto it = unsorted.find(index);
          if (it == unsorted.end()) break;
          items.push_back(std::move(it->second));
          unsorted.erase(it);
          ++index;
        }
      } else {
        unsorted.emplace(i, std::move(obj));
      }
      done = length && index == *length;
    }
    changed.notify_all();
    if (done) _remove_from_cache();
  }
  // Python: _set_length(length).
  void _set_length(std::int64_t n) {
    bool done;
    {
      std::lock_guard lock(mutex);
      length = n;
      done = index == n;
    }
    changed.notify_all();
    if (done) _remove_from_cache();
  }
};

// ------------------------------------------------------------------ workers

// A pool's worker: a process (Pool) or a thread (ThreadPool), as Python's
// pool holds Process or DummyProcess objects with the same methods.
struct Worker {
  virtual ~Worker() = default;
  virtual std::optional<int> exitcode() = 0;
  virtual void join() = 0;
  virtual bool is_alive() = 0;
  virtual void terminate() = 0;
  virtual std::optional<int> sentinel() = 0;
  virtual std::string name() = 0;
  virtual std::optional<pid_t> pid() = 0;
  std::int64_t slot = 0;
};

struct ProcessWorker : Worker {
  std::unique_ptr<BaseProcess> p;
  std::optional<int> exitcode() override { return p->exitcode(); }
  void join() override { p->join(); }
  bool is_alive() override { return p->is_alive(); }
  void terminate() override { p->terminate(); }
  std::optional<int> sentinel() override { return p->sentinel(); }
  std::string name() override { return p->name(); }
  std::optional<pid_t> pid() override { return p->pid(); }
};

struct ThreadWorker : Worker {
  std::unique_ptr<dummy::Process> t;
  std::optional<int> exitcode() override { return t->exitcode(); }
  void join() override { t->join(); }
  bool is_alive() override { return t->is_alive(); }
  void terminate() override {}  // threads cannot be terminated (Python: no such method)
  std::optional<int> sentinel() override { return std::nullopt; }
  std::string name() override { return t->name(); }
  std::optional<pid_t> pid() override { return std::nullopt; }
};

// ------------------------------------------------------------------ an in-process queue

// Python: queue.SimpleQueue, for _taskqueue and ThreadPool's _inqueue and
// _outqueue.  An empty optional is None.
template <class T>
class ThreadQueue {
 public:
  void put(T item) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
    }
    ready_.notify_one();
  }
  T get() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return !items_.empty(); });
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  bool empty() {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }
  std::optional<T> get_nowait() {
    std::lock_guard lock(mutex_);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<T> items_;
};

// A task as the task handler sends it.  A map's chunk is not copied into
// the task: `value` holds reduction::int_run_placeholder(true) where the
// chunk goes, and `items[0..n)` are its items, borrowed from the list the
// chunks are cut from, pickled from there (reduction::dumps_with_items).
struct Task {
  Object value = {};
  const Object* items = nullptr;
  std::size_t n = 0;

  // The task itself, with its chunk copied in (a ThreadPool's worker takes it so).
  Object take() {
    if (items == nullptr) return std::move(value);
    auto& args = std::get<Object::Tuple>(std::get<Object::Tuple>(value.variant()).items[3].variant());
    auto& pair = std::get<Object::Tuple>(args.items[0].variant());
    pair.items[1] = Object::Tuple{std::vector<Object>(items, items + n)};
    items = nullptr;
    return std::move(value);
  }
  // The pickle that the worker reads: the same bytes as dumps(take()).
  std::string dumps() const {
    if (items == nullptr) return reduction::ForkingPickler::dumps(value);
    return reduction::dumps_with_items(value, items, n);
  }
};

// What _taskqueue carries: Python's (taskseq, set_length), taskseq a
// generator of tasks.  `next` returns the next task or None when done.
struct TaskSequence {
  std::function<std::optional<Task>()> next;
  std::function<void(std::int64_t)> set_length;  // imap's, else empty
};

// ------------------------------------------------------------------ the pool

enum class HandlerState { RUN, CLOSE, TERMINATE };

struct PoolState {
  BaseContext* ctx = nullptr;
  int processes = 0;
  Target initializer;
  Args initargs;
  std::optional<std::int64_t> maxtasksperchild;
  bool wrap_exception = true;  // Python: Pool._wrap_exception (ThreadPool: False)
  bool threads = false;        // ThreadPool

  mutable std::mutex mutex;          // the GIL's part: state, pool, cache
  std::string state = INIT;          // Python: self._state
  std::vector<std::unique_ptr<Worker>> pool;  // Python: self._pool
  std::map<std::int64_t, std::shared_ptr<ResultBase>> cache;  // Python: self._cache

  ThreadQueue<std::optional<TaskSequence>> taskqueue;  // Python: self._taskqueue
  std::optional<queues::SimpleQueue> change_notifier;  // Python: self._change_notifier
  // Process pool: Python's _inqueue, _outqueue (SimpleQueues).
  std::optional<queues::SimpleQueue> inqueue, outqueue;
  // ThreadPool: the same as in-process queues.
  ThreadQueue<Object> thread_inqueue, thread_outqueue;
  // The workers' slots (see WorkerSlot).
  std::shared_ptr<heap::Arena> slots_arena;
  std::vector<WorkerSlot> thread_slots;
  std::vector<bool> slot_used;

  std::atomic<HandlerState> worker_handler_state{HandlerState::RUN};
  std::atomic<HandlerState> task_handler_state{HandlerState::RUN};
  std::atomic<HandlerState> result_handler_state{HandlerState::RUN};
  std::thread worker_handler, task_handler, result_handler;
  std::atomic<bool> task_handler_alive{false};
  // The port's shortcut for apply_async (see try_put_now): held by whoever
  // writes to _inqueue in this process, the task handler or a caller.
  std::mutex inqueue_write;
  // Messages the parent has written to _inqueue; the workers count those
  // they have taken in the shared table (tasks_taken_at).
  std::atomic<std::uint64_t> tasks_written{0};
  std::atomic<bool> task_handler_busy{false};  // in the middle of a task sequence

  // ---- the result reader (the port's; Python's result handler reads alone)
  // One thread at a time reads _outqueue: the reader.  A caller waiting in
  // get() or wait() for a plain apply_async result becomes the reader when
  // nobody reads, reads the results itself (its own and any other that
  // arrives) and gives the role back when its own is in; the result handler
  // is the reader when a job needs it (a map, an imap, callbacks, which run
  // in its thread as in Python), after close() and terminate(), and when
  // results wait in the pipe with nobody reading them for a tick.  A caller
  // that finds another thread reading waits for its result or for the
  // reader to let go, and then reads itself.  A round trip then wakes two threads (the
  // worker and the caller), not three (worker, result handler, caller).
  enum class Reader { NONE, HANDLER, CALLER };
  std::mutex read_mutex;                  // guards the members below
  std::condition_variable read_changed;   // the result handler, and _terminate_pool, wait here
  Reader reader = Reader::NONE;
  bool reading_closed = false;            // terminate() or EOF: no caller reads any more
  int followers = 0;                      // callers waiting while another thread reads
  std::int64_t handler_jobs = 0;          // jobs in the cache with wants_handler
  bool handler_draining = false;          // the result handler reads what waits in the pipe
  std::atomic<bool> handler_idle{false};  // the result handler sleeps without a tick
  std::atomic<std::uint64_t> reads{0};    // messages read from _outqueue so far
  std::deque<std::optional<Message>> handoff;  // read by a caller for the result handler (nullopt: EOF)
  std::string read_buffer;                // the reader's buffer for each message (quick_get)
  os::Fd reader_wake;                     // an eventfd that wakes a caller reading _outqueue
  // How long results may wait in the pipe, nobody reading, before the result
  // handler reads them (and how often it looks).
  static constexpr std::chrono::milliseconds read_tick{10};
  // Ticks with nothing to do before the result handler sleeps without one.
  static constexpr int idle_ticks = 20;

  util::Finalize terminate;  // Python: self._terminate

  ~PoolState() {
    // Threads that were never joined (a pool whose constructor failed).
    for (std::thread* t : {&worker_handler, &task_handler, &result_handler}) {
      if (t->joinable()) t->join();
    }
  }

  WorkerSlot* slot(std::int64_t i) {
    if (threads) return &thread_slots[static_cast<std::size_t>(i)];
    return slot_at(slots_arena->buffer(), i);
  }

  // Python: self._quick_put / self._quick_get.  In the parent only the
  // holder of inqueue_write writes _inqueue and only the reader (see above)
  // reads _outqueue, so neither takes the queue's lock (as in Python).
  void quick_put(Task& task) {
    if (threads) return thread_inqueue.put(task.take());
    inqueue->_writer().send_bytes(task.dumps());
    tasks_written.fetch_add(1, std::memory_order_relaxed);
  }
  void quick_put(const Object& task) {
    Task t{task};
    quick_put(t);
  }
  Message quick_get() {
    if (threads) return Message{thread_outqueue.get()};
    // Into read_buffer, whose room is reused: one reader at a time uses it.
    outqueue->_reader().recv_bytes_reusing(read_buffer);
    Message m = loads_message(read_buffer);
    trim_read_buffer(read_buffer);
    return m;
  }

  // Not in Python: apply_async writes its one task to _inqueue itself when
  // nothing is queued before it and the pipe has room, instead of waking the
  // task handler to do it: one thread switch less per call (a pool's round
  // trip is a few of them).  Returns false when the task handler must do it.
  // A task that cannot be pickled fails its result here, as there.
  bool try_put_now(std::int64_t job, const Object& task) {
    if (threads || task_handler_busy || !taskqueue.empty()) return false;
    std::lock_guard guard(inqueue_write);
    std::string pickled;
    try {
      pickled = reduction::ForkingPickler::dumps(task);
    } catch (const std::exception& e) {
      cache_set(job, 0, Object::Tuple{{false, reduction::_reduce_exception(e)}});
      return true;
    }
    // A write of at most PIPE_BUF bytes to a pipe is all or nothing, and an
    // empty pipe has room for one (its buffer is at least PIPE_BUF), so is
    // one that poll() says has room: this write cannot block the caller,
    // which apply_async must never do.
    if (pickled.size() + 4 > PIPE_BUF) return false;
    // The pipe is empty when the workers have taken every message the
    // parent wrote (a worker counts a message once it has read all of it;
    // the parent's count moves under inqueue_write, which we hold): then no
    // system call is needed to know there is room.
    bool empty = tasks_taken_at(slots_arena->buffer())->load(std::memory_order_acquire) == tasks_written;
    if (!empty) {
      pollfd room{inqueue->_writer().fileno(), POLLOUT, 0};
      // Ask whether the pipe has room now (timeout 0: never wait).
      if (::poll(&room, 1, 0) != 1 || (room.revents & POLLOUT) == 0) return false;
    }
    if (util::trace_enabled()) util::_trace("Pool task dispatched: job " + std::to_string(job) + ", index 0");
    inqueue->_writer().send_bytes(pickled);
    tasks_written.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // ---- the cache

  void cache_add(const std::shared_ptr<ResultBase>& result) {
    result->cache_owner = this;
    {
      std::lock_guard lock(mutex);
      cache.emplace(result->job, result);
    }
    // A job the result handler must read for, or a result handler asleep
    // without a tick (it reads plain results nobody comes for): wake it.
    if (result->wants_handler || handler_idle) {
      std::lock_guard lock(read_mutex);
      if (result->wants_handler) ++handler_jobs;
      read_changed.notify_all();
    }
  }
  // Python: _PoolCache.__delitem__: tell the worker handler when the cache
  // empties, so that a closing pool notices that the last job is done.  (Only
  // then: while the pool runs, the worker handler does not look at the cache,
  // and waking it for every job would cost each job a context switch.)
  void cache_remove(std::int64_t job) {
    bool notify, counted = false;
    {
      std::lock_guard lock(mutex);
      if (auto it = cache.find(job); it != cache.end()) {
        counted = it->second->wants_handler;
        cache.erase(it);
      }
      notify = cache.empty() && worker_handler_state != HandlerState::RUN;
    }
    bool wake_followers;
    {
      std::lock_guard lock(read_mutex);
      if (counted) --handler_jobs;
      wake_followers = followers > 0;
    }
    // A result is in: a caller waiting behind the reader for it (see
    // wait_for_result) wakes, after the lock is let go so that it does not
    // wake only to wait for the lock.
    if (wake_followers) read_changed.notify_all();
    if (notify) change_notifier->put(Object());
  }
  std::shared_ptr<ResultBase> cache_find(std::int64_t job) {
    std::lock_guard lock(mutex);
    auto it = cache.find(job);
    return it == cache.end() ? nullptr : it->second;
  }
  bool cache_empty() {
    std::lock_guard lock(mutex);
    return cache.empty();
  }
  // Python: `try: cache[job]._set(i, obj) except KeyError: pass`.
  void cache_set(std::int64_t job, std::int64_t i, Object obj) {
    if (auto result = cache_find(job)) result->_set(i, std::move(obj));
  }
  // cache_set by a thread that does not read _outqueue (a lost worker, a
  // task that could not be sent): a caller reading _outqueue while it waits
  // for this very result must look again.
  void cache_set_aside(std::int64_t job, std::int64_t i, Object obj) {
    cache_set(job, i, std::move(obj));
    wake_reader();
  }

  // ---- the result reader (see above)

  // Under read_mutex: the result handler must read now.
  bool handler_wanted() const {
    return threads || handler_jobs > 0 || handler_draining ||
           worker_handler_state != HandlerState::RUN || result_handler_state != HandlerState::RUN;
  }
  // Wake the caller that reads _outqueue, if one does.
  void wake_reader() {
    if (!reader_wake) return;
    std::uint64_t one = 1;
    // Add one to the eventfd's counter: that makes it readable, which ends
    // the reading caller's poll() (it reads the counter back to zero).
    ssize_t written = ::write(reader_wake.get(), &one, sizeof one);
    (void)written;  // it can only fail with a counter at its maximum, readable already
  }
  // Python: the result handler's `cache[job]._set(i, obj)` for one message
  // from a worker; `result` is cache[job] when the caller found it already.
  void deliver(Message message, std::shared_ptr<ResultBase> result = nullptr) {
    auto& t = std::get<Object::Tuple>(message.value.variant());
    if (t.items.size() != 3) return;
    std::int64_t job = t.items[0].as<std::int64_t>(), i = t.items[1].as<std::int64_t>();
    if (util::trace_enabled()) util::_trace("Pool task returned: job " + std::to_string(job) + ", index " + std::to_string(i));
    if (result == nullptr) result = cache_find(job);
    if (result == nullptr) return;
    if (!message.has_run) return result->_set(i, std::move(t.items[2]));
    result->_set_ints(i, std::move(t.items[2]), std::move(message.ints));
  }
  void wait_for_result(ApplyImpl& result, std::optional<double> deadline);
  void read_for(ApplyImpl& result, std::optional<double> deadline);
  Message _result_handler_get();

  // ---- workers

  std::unique_ptr<Worker> make_worker(std::int64_t slot_index);
  bool _join_exited_workers();
  void _repopulate_pool();
  void _maintain_pool();

  // ---- the three threads
  /// The end of Pool.__init__: start the worker, task and result handlers,
  /// register _terminate_pool, and enter RUN.
  void _start_handlers() {
    worker_handler = std::thread([this] { _handle_workers(); });
    task_handler_alive = true;
    task_handler = std::thread([this] {
      _handle_tasks();
      task_handler_alive = false;
    });
    result_handler = std::thread([this] { _handle_results(); });
    // Python: util.Finalize(self, self._terminate_pool, exitpriority=15).
    terminate = util::Finalize([this] { _terminate_pool(); }, 15, "Pool._terminate_pool");
    std::lock_guard lock(mutex);
    state = RUN;
  }
  void _handle_workers();
  void _handle_tasks();
  void _handle_results();
  void _terminate_pool();
};

void ResultBase::_remove_from_cache() { cache_owner->cache_remove(job); }

std::unique_ptr<Worker> PoolState::make_worker(std::int64_t slot_index) {
  slot(slot_index)->busy.store(0);
  if (threads) {
    auto w = std::make_unique<ThreadWorker>();
    WorkerSlot* s = slot(slot_index);
    PoolState* self = this;
    w->t = std::make_unique<dummy::Process>(ProcessOptions{
        .target = [self, s] {
          worker_loop([self] { return Message{self->thread_inqueue.get()}; },
                      [self](const Message& m) { self->thread_outqueue.put(m.value); }, self->initializer,
                      self->initargs, self->maxtasksperchild, self->wrap_exception, s);
        }});
    w->t->set_daemon(true);
    w->t->start();
    w->slot = slot_index;
    return w;
  }
  // Python: Process(ctx, target=worker, args=(inqueue, outqueue, initializer,
  // initargs, maxtasksperchild, wrap_exception)).
  auto w = std::make_unique<ProcessWorker>();
  w->p = ctx->Process(ProcessOptions{
      .target = &worker,
      .args = {*inqueue, *outqueue, initializer, Object(Object::Tuple{initargs}),
               maxtasksperchild ? Object(*maxtasksperchild) : Object(), wrap_exception,
               heap::_reduce_arena(slots_arena), slot_index}});
  // Python: w.name = w.name.replace('Process', 'PoolWorker').
  std::string name = w->p->name();
  if (auto at = name.find("Process"); at != std::string::npos) name.replace(at, 7, "PoolWorker");
  w->p->set_name(name);
  w->p->set_daemon(true);
  w->p->start();
  w->slot = slot_index;
  return w;
}

// Python: _join_exited_workers(pool): forget workers that have exited.
// Beyond Python: a worker that died in the middle of a task fails that task.
// [pool-join-exited]
bool PoolState::_join_exited_workers() {
  bool cleaned = false;
  std::vector<std::unique_ptr<Worker>> exited;
  {
    std::lock_guard lock(mutex);
    for (std::size_t i = pool.size(); i-- > 0;) {
      if (pool[i]->exitcode()) {
        util::debug("cleaning up worker " + std::to_string(i));
        exited.push_back(std::move(pool[i]));
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
  for (auto& w : exited) {
    w->join();
    cleaned = true;
    WorkerSlot* s = slot(w->slot);
    if (s->busy.load(std::memory_order_acquire) != 0) {
      std::int64_t job = s->job.load(std::memory_order_relaxed);
      std::int64_t index = s->index.load(std::memory_order_relaxed);
      int code = *w->exitcode();
      std::string how = "exitcode " + std::to_string(code);
      if (auto named = _exitcode_to_name().find(code); named != _exitcode_to_name().end()) {
        how += " (" + named->second.substr(1) + ")";
      }
      WorkerLostError error("Worker " + w->name() + " (pid " + std::to_string(w->pid().value_or(0)) +
                            ") exited while running a task: " + how);
      cache_set_aside(job, index, Object::Tuple{{false, reduction::_reduce_exception(error)}});
    }
    std::lock_guard lock(mutex);
    slot_used[static_cast<std::size_t>(w->slot)] = false;
  }
  return cleaned;
}
// [pool-join-exited]

// Python: _repopulate_pool_static: bring the workers back to `processes`.
void PoolState::_repopulate_pool() {
  while (true) {
    std::int64_t free_slot = -1;
    {
      std::lock_guard lock(mutex);
      if (static_cast<int>(pool.size()) >= processes) return;
      for (std::size_t i = 0; i < slot_used.size(); ++i) {
        if (!slot_used[i]) {
          free_slot = static_cast<std::int64_t>(i);
          slot_used[i] = true;
          break;
        }
      }
    }
    auto w = make_worker(free_slot);
    std::lock_guard lock(mutex);
    pool.push_back(std::move(w));
    util::debug("added worker");
  }
}

// Python: _maintain_pool: clean up exited workers and start replacements.
void PoolState::_maintain_pool() {
  if (_join_exited_workers()) _repopulate_pool();
}

// Python: Pool._handle_workers, the worker handler thread.
// [pool-handle-workers]
void PoolState::_handle_workers() {
  // Keep maintaining workers until the cache gets drained, unless the pool
  // is terminated (Python's comment).
  while (worker_handler_state == HandlerState::RUN ||
         (!cache_empty() && worker_handler_state != HandlerState::TERMINATE)) {
    _maintain_pool();
    // Python: _wait_for_updates(worker sentinels + [outqueue._reader,
    // change_notifier._reader]).  The port leaves out _outqueue's reader: it is
    // readable whenever a result waits for the result handler, which would
    // make this loop spin; the cache emptying is announced on the notifier.
    std::vector<int> sentinels;
    {
      std::lock_guard lock(mutex);
      for (auto& w : pool) {
        if (auto s = w->sentinel()) sentinels.push_back(*s);
      }
    }
    sentinels.push_back(change_notifier->_reader().fileno());
    connection::wait(sentinels);
    while (!change_notifier->empty()) change_notifier->get();
  }
  // Send the sentinel that stops the task handler (Python's comment: "send
  // sentinel to stop workers": the task handler then stops them).
  taskqueue.put(std::nullopt);
  util::debug("worker handler exiting");
}
// [pool-handle-workers]

// Python: Pool._handle_tasks, the task handler thread.
// [pool-handle-tasks]
void PoolState::_handle_tasks() {
  while (true) {
    std::optional<TaskSequence> item = taskqueue.get();
    if (!item) {
      util::debug("task handler got sentinel");
      break;
    }
    std::optional<std::int64_t> last_index;
    bool stopped = false;
    task_handler_busy = true;
    while (std::optional<Task> task = item->next()) {
      if (task_handler_state != HandlerState::RUN) {
        util::debug("task handler found thread._state != RUN");
        stopped = true;
        break;
      }
      const Object::Tuple& t = std::get<Object::Tuple>(task->value.variant());
      std::int64_t job = t.items[0].as<std::int64_t>();
      last_index = t.items[1].as<std::int64_t>();
      if (util::trace_enabled()) util::_trace("Pool task dispatched: job " + std::to_string(job) + ", index " + std::to_string(*last_index));
      try {
        std::lock_guard guard(inqueue_write);
        quick_put(*task);
      } catch (const std::exception& e) {
        // A task that cannot be sent (its function not found by name, an
        // argument that cannot be pickled) fails its own result.
        cache_set_aside(job, *last_index, Object::Tuple{{false, reduction::_reduce_exception(e)}});
      }
    }
    task_handler_busy = false;
    if (stopped) break;
    if (item->set_length) {
      util::debug("doing set_length()");
      item->set_length(last_index ? *last_index + 1 : 0);
    }
  }
  // Python sends None to the result handler and one None per worker.  After
  // terminate() the port does not: the workers are being terminated and the
  // result handler is stopped another way, and a blocked write here would
  // hang terminate() (CPython issue 78178).
  if (task_handler_state != HandlerState::TERMINATE) {
    try {
      util::debug("task handler sending sentinel to result handler");
      if (threads) thread_outqueue.put(Object());
      else outqueue->_writer().send(Object());
      util::debug("task handler sending sentinel to workers");
      std::size_t n;
      {
        std::lock_guard lock(mutex);
        n = pool.size();
      }
      for (std::size_t i = 0; i < n; ++i) quick_put(Object());
    } catch (const OSError&) {
      util::debug("task handler got OSError when sending sentinels");
    }
  }
  util::debug("task handler exiting");
}
// [pool-handle-tasks]

// Python: Pool._handle_results, the result handler thread.
// [pool-handle-results]
void PoolState::_handle_results() {
  auto get = [this] { return _result_handler_get(); };
  while (true) {
    std::optional<Message> next = get_or_gone(get, "result handler");
    if (!next) return;
    if (result_handler_state != HandlerState::RUN) {
      util::debug("result handler found thread._state=TERMINATE");
      break;
    }
    if (next->value.is_none()) {
      util::debug("result handler got sentinel");
      break;
    }
    deliver(std::move(*next));
  }
  while (!cache_empty() && result_handler_state != HandlerState::TERMINATE) {
    std::optional<Message> next = get_or_gone(get, "result handler");
    if (!next) return;
    if (next->value.is_none()) {
      util::debug("result handler ignoring extra sentinel");
      continue;
    }
    deliver(std::move(*next));
  }
  util::debug("result handler exiting");
}
// [pool-handle-results]

// Python: the result handler's `task = get()`: the next message, which it
// reads from _outqueue as the reader, or which a caller read and handed over
// (a sentinel, a result whose callbacks must run in this thread).  Once the
// pool is terminated and nothing is left to take, a None: the loop above
// then stops as at its sentinel.
// [pool-result-handler-get]
Message PoolState::_result_handler_get() {
  std::unique_lock lock(read_mutex);
  if (reader == Reader::HANDLER) {
    // Give the role back after each message when nothing needs this thread
    // to read, so that the next caller to wait reads its result itself.
    if (handler_draining && !outqueue->_reader().poll()) handler_draining = false;
    if (!handler_wanted()) {
      reader = Reader::NONE;
      // A caller waiting behind this thread for its result reads it now.
      if (followers > 0) read_changed.notify_all();
    }
  }
  std::uint64_t seen = reads;
  int quiet = 0;
  while (reader != Reader::HANDLER) {
    if (!handoff.empty()) {
      std::optional<Message> message = std::move(handoff.front());
      handoff.pop_front();
      if (!message) throw EOFError("");
      return std::move(*message);
    }
    if (result_handler_state == HandlerState::TERMINATE) return Message{};
    if (reader == Reader::NONE && handler_wanted()) {
      reader = Reader::HANDLER;
      break;
    }
    if (quiet >= idle_ticks) {
      // Nothing read and nothing waited for in a while: sleep until a job
      // is added (cache_add wakes this thread) or the pool changes.
      handler_idle = true;
      if (cache_empty()) read_changed.wait(lock);
      handler_idle = false;
      quiet = 0;
      seen = reads;
      continue;
    }
    if (read_changed.wait_for(lock, read_tick) == std::cv_status::no_timeout) continue;
    std::uint64_t now = reads;
    // A whole tick with results in the pipe and nobody reading them (their
    // callers do not wait yet): read what is there, so that ready() turns
    // true and the workers never block on a full pipe.
    if (now == seen && reader == Reader::NONE && outqueue->_reader().poll()) {
      handler_draining = true;
      reader = Reader::HANDLER;
      break;
    }
    quiet = now == seen && cache_empty() ? quiet + 1 : 0;
    seen = now;
  }
  lock.unlock();
  Message message = quick_get();
  reads.fetch_add(1, std::memory_order_relaxed);
  return message;
}
// [pool-result-handler-get]

// ApplyResult::wait's part in the pool: wait for `result` until `deadline`
// (a monotonic time; none: forever), reading _outqueue itself when nobody
// reads it, or else waiting for the reader to hand the result over.
// [pool-wait-for-result]
void PoolState::wait_for_result(ApplyImpl& result, std::optional<double> deadline) {
  // Only a plain apply_async result may be read for by its caller.
  const bool may_lead = !threads && !result.wants_handler;
  while (!result.ready()) {
    {
      std::unique_lock lock(read_mutex);
      if (!may_lead || reading_closed) {
        // The result handler reads for this result (it must: a ThreadPool,
        // a job with callbacks or a map, a pool closed or terminated).
        lock.unlock();
        result.wait_ready(deadline);
        return;
      }
      if (reader != Reader::NONE) {
        // Another thread reads: wait until it has delivered our result or
        // has let go of the pipe, then look again.  (Not the result
        // handler's job: it would then stay the reader for every call that
        // follows, a third thread woken per round trip.)
        ++followers;
        auto settled = [&] { return result.ready() || reader == Reader::NONE || reading_closed; };
        if (!deadline) {
          read_changed.wait(lock, settled);
        } else {
          read_changed.wait_for(lock, std::chrono::duration<double>(std::max(0.0, *deadline - os::monotonic())),
                                settled);
        }
        --followers;
        if (!settled()) return;  // the deadline passed
        continue;
      }
      reader = Reader::CALLER;
    }
    try {
      read_for(result, deadline);
    } catch (...) {
      std::lock_guard lock(read_mutex);
      reader = Reader::NONE;
      read_changed.notify_all();
      throw;
    }
    std::lock_guard lock(read_mutex);
    reader = Reader::NONE;
    // Hand the role on: to a caller waiting behind us, to the result
    // handler if it must read (a map, a message handed over), or to
    // _terminate_pool.
    if (followers > 0 || !handoff.empty() || handler_wanted() || reading_closed) read_changed.notify_all();
    // A deadline that has passed: we have read what was there (read_for
    // polls once more without waiting), and stop.
    if (deadline && os::monotonic() >= *deadline) return;
  }
}

// The caller as the reader: read messages until its own result is in, the
// deadline passes, another thread wakes it (its result set elsewhere,
// terminate()), or the pipe ends.  Each message is delivered here, as the
// result handler would, except those the result handler must see itself.
void PoolState::read_for(ApplyImpl& result, std::optional<double> deadline) {
  int out_fd = outqueue->_reader().fileno();
  while (!result.ready()) {
    int ms = -1;
    if (deadline) {
      double left = *deadline - os::monotonic();
      ms = left <= 0 ? 0 : static_cast<int>(std::ceil(left * 1000));
    }
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {reader_wake.get(), POLLIN, 0}};
    // Sleep until a result arrives or another thread wakes us: with the
    // eventfd beside the pipe, no caller stays asleep in read() on a pipe
    // that brings nothing more for it.  Past the deadline, only look (a
    // timeout of 0): what the pipe holds is read, nothing is waited for.
    int n = ::poll(fds, 2, ms);
    if (n < 0 && errno != EINTR) raise_os_error("poll", errno);
    if (n == 0 && ms == 0) return;
    if (n <= 0) continue;
    if ((fds[1].revents & POLLIN) != 0) {
      std::uint64_t count;
      // Take the eventfd's counter back to zero (it is non-blocking).
      ssize_t got = ::read(reader_wake.get(), &count, sizeof count);
      (void)got;
      std::lock_guard lock(read_mutex);
      if (reading_closed) return;
    }
    if (fds[0].revents == 0) continue;
    std::optional<Message> message = get_or_gone([this] { return quick_get(); }, "pool result reader");
    reads.fetch_add(1, std::memory_order_relaxed);
    if (message) {
      // The task handler's sentinel (None) and results whose callbacks must
      // run in the result handler thread go to that thread; the rest here.
      const auto* t = std::get_if<Object::Tuple>(&message->value.variant());
      std::shared_ptr<ResultBase> owner;
      if (t != nullptr && t->items.size() == 3) owner = cache_find(t->items[0].as<std::int64_t>());
      if (t != nullptr && (owner == nullptr || !owner->runs_callbacks)) {
        deliver(std::move(*message), std::move(owner));
        continue;
      }
    }
    bool gone = !message;
    std::lock_guard lock(read_mutex);
    if (gone) reading_closed = true;  // EOF: the result handler ends, nobody reads again
    handoff.push_back(std::move(message));
    read_changed.notify_all();
    if (gone) return;
  }
}
// [pool-wait-for-result]

// Python: Pool._terminate_pool, run once, by terminate(), the destructor or at exit.
// [pool-terminate]
void PoolState::_terminate_pool() {
  util::debug("finalizing pool");
  // Stop the worker handler first, so that no worker is started behind our
  // back, then the other two.
  worker_handler_state = HandlerState::TERMINATE;
  task_handler_state = HandlerState::TERMINATE;
  result_handler_state = HandlerState::TERMINATE;
  {
    // No caller reads _outqueue from now on (they wait for their results
    // as in Python); the result handler stops waiting for a message.
    std::lock_guard lock(read_mutex);
    reading_closed = true;
    read_changed.notify_all();
  }
  wake_reader();
  change_notifier->put(Object());
  util::debug("joining worker handler");
  if (worker_handler.joinable()) worker_handler.join();

  // Terminate workers which haven't already finished, and wait for them.
  // Python does this after helping the task handler, which takes the
  // inqueue's read lock: a worker killed while holding it would make that
  // wait forever.  With every worker gone first, no lock is needed.
  std::vector<std::unique_ptr<Worker>> workers;
  {
    std::lock_guard lock(mutex);
    workers.swap(pool);
  }
  if (!threads) {
    util::debug("terminating workers");
    for (auto& w : workers) {
      if (!w->exitcode()) w->terminate();
    }
    util::debug("joining pool workers");
    for (auto& w : workers) w->join();
  }

  // Python: _help_stuff_finish: the task handler may be blocked writing to a
  // full inqueue; read what is there until it has finished.
  util::debug("helping task handler/workers to finish");
  if (threads) {
    while (thread_inqueue.get_nowait()) {
    }
    for (std::size_t i = 0; i < workers.size(); ++i) thread_inqueue.put(Object());
  } else {
    // Raw bytes, not messages: a worker killed in the middle of reading a
    // task leaves the pipe in the middle of a message, where recv_bytes()
    // would read a torn length ("bad message length", or a wait for bytes
    // that never come).  Nobody else reads it now: discard whatever is there.
    while (task_handler_alive) {
      if (inqueue->_reader().poll(0.01) && os::read(inqueue->_reader().fileno(), 65536).empty()) break;
    }
  }
  util::debug("joining task handler");
  if (task_handler.joinable()) task_handler.join();

  // The result handler reads _outqueue: with every worker gone, closing the
  // parent's writing end gives it EOF after what is still there (Python puts
  // a None, which blocks if the pipe is full; CPython issue 78178).
  util::debug("joining result handler");
  if (threads) {
    thread_outqueue.put(Object());
  } else {
    try {
      outqueue->_writer().send(Object());  // no lock: no worker is left to share it
    } catch (const std::exception&) {
    }
    outqueue->_writer().close();
  }
  if (result_handler.joinable()) result_handler.join();

  if (threads) {
    util::debug("joining pool workers");
    for (auto& w : workers) w->join();
  }
  {
    // A caller still reading _outqueue (woken above, or by the EOF) lets go
    // of it before the pipes are closed.
    std::unique_lock lock(read_mutex);
    read_changed.wait(lock, [this] { return reader != Reader::CALLER; });
  }
  inqueue.reset();
  outqueue.reset();
}
// [pool-terminate]

}  // namespace detail

// ------------------------------------------------------------------ results' API

// Not in Python, whose result handler reads every result as it comes: here
// nobody may be reading a plain apply_async result that arrived (see "the
// result reader" in PoolState), so ready() first reads what the result pipe
// holds, without waiting (wait(0)), when no other thread reads it.
bool ApplyResult::ready() const {
  if (impl_->ready()) return true;
  wait(0.0);
  return impl_->ready();
}

bool ApplyResult::successful() const {
  auto& self = static_cast<detail::ApplyImpl&>(*impl_);
  std::lock_guard lock(self.mutex);
  if (!self.is_ready) throw ValueError(repr() + " not ready");
  return self.success;
}

void ApplyResult::wait(std::optional<double> timeout) const {
  auto& self = static_cast<detail::ApplyImpl&>(*impl_);
  std::optional<double> deadline;
  if (timeout) deadline = os::monotonic() + std::max(0.0, *timeout);
  if (std::shared_ptr<detail::PoolState> pool = self.pool.lock()) return pool->wait_for_result(self, deadline);
  self.wait_ready(deadline);
}

Object ApplyResult::get(std::optional<double> timeout) const {
  wait(timeout);
  auto& self = static_cast<detail::ApplyImpl&>(*impl_);
  std::lock_guard lock(self.mutex);
  if (!self.is_ready) throw TimeoutError("");
  if (self.success) return self.value;
  raise_value(self.value);
}

std::string ApplyResult::repr() const {
  std::ostringstream out;
  out << "<multiprocessing.pool."
      << (dynamic_cast<detail::MapImpl*>(impl_.get()) ? "MapResult" : "ApplyResult")
      << " object at " << static_cast<const void*>(impl_.get()) << ">";
  return out.str();
}

std::int64_t ApplyResult::_job() const { return impl_->job; }

Object::List MapResult::get_list(std::optional<double> timeout) const {
  Object all = get(timeout);
  return std::move(std::get<Object::List>(all.variant()));
}

std::optional<Object> IMapIterator::next(std::optional<double> timeout) {
  if (chunked_ && pending_pos_ < pending_.size()) return std::move(pending_[pending_pos_++]);
  auto& self = static_cast<detail::IMapImpl&>(*impl_);
  Object item;
  {
    std::unique_lock lock(self.mutex);
    auto have_item = [&] { return !self.items.empty() || (self.length && self.index == *self.length); };
    if (!timeout) {
      self.changed.wait(lock, have_item);
    } else {
      self.changed.wait_for(lock, std::chrono::duration<double>(std::max(0.0, *timeout)), have_item);
    }
    if (self.items.empty()) {
      if (self.length && self.index == *self.length) return std::nullopt;  // StopIteration
      throw TimeoutError("");
    }
    item = std::move(self.items.front());
    self.items.pop_front();
  }
  auto& t = std::get<Object::Tuple>(item.variant());
  if (!t.items[0].as<bool>()) raise_value(t.items[1]);
  if (!chunked_) return std::move(t.items[1]);
  // imap with chunksize > 1: a result is a chunk of results (Python:
  // `item for chunk in result for item in chunk`).
  pending_ = std::move(std::get<Object::List>(t.items[1].variant()));
  pending_pos_ = 0;
  return next(timeout);
}

std::int64_t IMapIterator::_job() const { return impl_->job; }

IMapIterator::iterator& IMapIterator::iterator::operator++() {
  current_ = it_->next();
  if (!current_) it_ = nullptr;
  return *this;
}

// ------------------------------------------------------------------ Pool

namespace {
// Both pipes get a buffer of 1 MiB instead of Linux's default 64 KiB.  A
// map's chunks and results are tens of KB each (12 500 ints of a default
// chunk take 37 to 62 KB pickled): in 64 KiB a worker would sleep in write()
// while the result handler still read the results before its own, and the
// task handler would sleep in write() once a chunk or two are ahead of the
// workers; each such sleep is a wake-up later, and a thread that sleeps and
// wakes often is the one the scheduler leaves waiting behind another on a
// busy CPU while the other CPU idles (measured in bench/README.md, Pool).
// With room for a whole map of 100 000 ints, the task handler pickles its
// chunks in one run and then sleeps.  A pipe's buffer takes memory only for
// the bytes in it (the kernel counts the size against the user's total,
// /proc/sys/fs/pipe-user-pages-soft: 64 MiB by default, 32 pools).
constexpr int kPipeSize = 1 << 20;
void widen_pipe(int fd) {
  // F_SETPIPE_SZ: room for kPipeSize bytes.  Above the system's limit
  // for unprivileged users (/proc/sys/fs/pipe-max-size, 1 MiB by default) or
  // past the user's total it fails (EPERM, EBUSY): the pipe then keeps its
  // size, which only costs those wake-ups.
  (void)::fcntl(fd, F_SETPIPE_SZ, kPipeSize);
}

std::shared_ptr<detail::PoolState> make_pool_state(std::optional<int> processes, Target initializer,
                                                   Args initargs, std::optional<int> maxtasksperchild,
                                                   BaseContext* context, bool threads) {
  auto state = std::make_shared<detail::PoolState>();
  state->ctx = context != nullptr ? context : &get_context();
  state->threads = threads;
  state->wrap_exception = !threads;
  if (!processes) processes = state->ctx->cpu_count();
  if (*processes < 1) throw ValueError("Number of processes must be at least 1");
  if (maxtasksperchild && *maxtasksperchild <= 0) {
    throw ValueError("maxtasksperchild must be a positive int or None");
  }
  state->processes = *processes;
  state->initializer = std::move(initializer);
  state->initargs = std::move(initargs);
  if (maxtasksperchild) state->maxtasksperchild = *maxtasksperchild;
  // Python: _setup_queues(); the change notifier wakes the worker handler.
  state->change_notifier.emplace(state->ctx->SimpleQueue());
  state->slot_used.assign(static_cast<std::size_t>(*processes), false);
  if (threads) {
    state->thread_slots = std::vector<WorkerSlot>(static_cast<std::size_t>(*processes));
  } else {
    state->inqueue.emplace(state->ctx->SimpleQueue());
    state->outqueue.emplace(state->ctx->SimpleQueue());
    widen_pipe(state->inqueue->_writer().fileno());
    widen_pipe(state->outqueue->_writer().fileno());
    // The eventfd that wakes a caller reading _outqueue (see wake_reader):
    // non-blocking, so that draining it never blocks; close-on-exec, as
    // every fd of the library.
    state->reader_wake = os::Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!state->reader_wake) raise_os_error("eventfd", errno);
    state->slots_arena = std::make_shared<heap::Arena>(
        std::max<std::size_t>(4096, kSlotsOffset + static_cast<std::size_t>(*processes) * sizeof(WorkerSlot)));
    new (state->slots_arena->buffer()) std::atomic<std::uint64_t>{0};
    for (int i = 0; i < *processes; ++i) {
      new (state->slots_arena->buffer() + kSlotsOffset + static_cast<std::size_t>(i) * sizeof(WorkerSlot))
          WorkerSlot{};
    }
  }
  return state;
}
}  // namespace

Pool::Pool(std::optional<int> processes, Target initializer, Args initargs,
           std::optional<int> maxtasksperchild, BaseContext* context)
    : state_(make_pool_state(processes, std::move(initializer), std::move(initargs), maxtasksperchild,
                             context, false)) {
  detail::PoolState& s = *state_;
  try {
    s._repopulate_pool();
  } catch (...) {
    for (auto& w : s.pool) {
      if (!w->exitcode()) w->terminate();
    }
    for (auto& w : s.pool) w->join();
    throw;
  }
  s._start_handlers();
}

Pool::Pool(ThreadWorkers, std::optional<int> processes, Target initializer, Args initargs)
    : state_(make_pool_state(processes, std::move(initializer), std::move(initargs), std::nullopt,
                             nullptr, true)) {
  detail::PoolState& s = *state_;
  s._repopulate_pool();
  s._start_handlers();
}

Pool::~Pool() {
  if (state_) terminate();  // Python: __exit__ -> terminate()
}

Pool::Pool(Pool&& other) noexcept = default;

void Pool::_check_running() const {
  std::lock_guard lock(state_->mutex);
  if (state_->state != RUN) throw ValueError("Pool not running");
}

Object Pool::apply(const Target& func, const Args& args) { return apply_async(func, args).get(); }

ApplyResult Pool::apply_async(const Target& func, const Args& args, Callback callback,
                              ErrorCallback error_callback) {
  _check_running();
  auto result = std::make_shared<detail::ApplyImpl>();
  result->runs_callbacks = callback || error_callback;
  result->wants_handler = result->runs_callbacks;  // else get() may read for it
  result->pool = state_;
  result->callback = std::move(callback);
  result->error_callback = std::move(error_callback);
  state_->cache_add(result);
  // Python: self._taskqueue.put(([(result._job, 0, func, args, kwds)], None)).
  Object task = Object::Tuple{{result->job, std::int64_t{0}, Object(func), Object::Tuple{args}, Object::Dict{}}};
  if (state_->try_put_now(result->job, task)) return ApplyResult(result);
  auto sent = std::make_shared<bool>(false);
  state_->taskqueue.put(detail::TaskSequence{
      [task = std::move(task), sent]() -> std::optional<detail::Task> {
        if (*sent) return std::nullopt;
        *sent = true;
        return detail::Task{task};
      },
      {}});
  return ApplyResult(result);
}

Object::List Pool::map(const Target& func, const Object::List& iterable, std::optional<int> chunksize) {
  MapResult result = _map_async(func, iterable, false, chunksize, {}, {}, /*borrow=*/true);
  return static_cast<detail::MapImpl&>(*result.impl_).take_list();
}

MapResult Pool::map_async(const Target& func, const Object::List& iterable, std::optional<int> chunksize,
                          Callback callback, ErrorCallback error_callback) {
  return _map_async(func, iterable, false, chunksize, std::move(callback), std::move(error_callback));
}

Object::List Pool::starmap(const Target& func, const Object::List& iterable, std::optional<int> chunksize) {
  MapResult result = _map_async(func, iterable, true, chunksize, {}, {}, /*borrow=*/true);
  return static_cast<detail::MapImpl&>(*result.impl_).take_list();
}

MapResult Pool::starmap_async(const Target& func, const Object::List& iterable,
                              std::optional<int> chunksize, Callback callback,
                              ErrorCallback error_callback) {
  return _map_async(func, iterable, true, chunksize, std::move(callback), std::move(error_callback));
}

namespace {
// Python: Pool._get_tasks(func, it, size) wrapped by _guarded_task_generation
// with mapstar: task k is (job, k, mapstar, ((func, chunk_k),), {}).
// [pool-chunks]
// `items` is what the chunks are cut from; a task points into it (see Task)
// and the task handler pickles its chunk from there.  `keep` lives as long
// as the task sequence: either the sequence's own copy of the items
// (map_async, imap: Python's generator holds the iterable), or, when the
// sequence borrows the caller's list (map(), starmap()), a lease whose end
// tells map() that the list is read no more (MapImpl::lent).  The last call,
// which finds no more chunks, reads only `n`.
std::function<std::optional<detail::Task>()> chunked_tasks(std::int64_t job, Object func, Object mapper,
                                                     const Object::List* items,
                                                     std::shared_ptr<const void> keep,
                                                     std::size_t size) {
  auto next_start = std::make_shared<std::size_t>(0);
  auto k = std::make_shared<std::int64_t>(0);
  std::size_t n = items->size();
  // `keep` is captured though unused: see above.
  return [=, keep = std::move(keep)]() -> std::optional<detail::Task> {
    if (*next_start >= n) return std::nullopt;
    std::size_t first = *next_start, stop = std::min(n, *next_start + size);
    *next_start = stop;
    Object args = tuple_of(tuple_of(func, Object(reduction::int_run_placeholder(true))));
    return detail::Task{tuple_of(job, (*k)++, mapper, std::move(args), Object::Dict{}), items->data() + first,
                stop - first};
  };
}
// [pool-chunks]
}  // namespace

// [pool-map-async]
MapResult Pool::_map_async(const Target& func, const Object::List& iterable, bool star,
                           std::optional<int> chunksize, Callback callback, ErrorCallback error_callback,
                           bool borrow) {
  _check_running();
  std::size_t n = iterable.size();
  std::size_t size;
  if (!chunksize) {
    // Python: chunksize, extra = divmod(len(iterable), len(self._pool) * 4).
    std::size_t workers;
    {
      std::lock_guard lock(state_->mutex);
      workers = std::max<std::size_t>(1, state_->pool.size());
    }
    size = n / (workers * 4);
    if (n % (workers * 4) != 0) ++size;
  } else {
    if (*chunksize < 1 && n != 0) throw ValueError("Chunksize must be 1+, not " + std::to_string(*chunksize));
    size = static_cast<std::size_t>(std::max(0, *chunksize));
  }
  if (n == 0) size = 0;

  auto result = std::make_shared<detail::MapImpl>();
  result->runs_callbacks = callback || error_callback;
  result->callback = std::move(callback);
  result->error_callback = std::move(error_callback);
  result->success = true;
  result->length = n;
  result->chunksize = static_cast<std::int64_t>(size);
  result->cache_owner = state_.get();
  result->pool = state_;
  if (size == 0) {
    result->value = Object::List{};
    result->is_ready = true;  // Python: chunksize <= 0: ready at once, not cached
  } else {
    result->number_left = static_cast<std::int64_t>(n / size + (n % size != 0 ? 1 : 0));
    result->chunk_done.assign(static_cast<std::size_t>(result->number_left), false);
    result->chunk_ints.assign(result->chunk_done.size(), false);
    result->chunk_values.resize(result->chunk_done.size());
    result->chunk_int_values.resize(result->chunk_done.size());
    state_->cache_add(result);
    Object mapper = Object::Global{"multiprocessing.pool", star ? "starmapstar" : "mapstar"};
    const Object::List* items = &iterable;
    std::shared_ptr<const void> keep;
    if (borrow) {
      // The lease: its deleter runs when the task handler drops the
      // sequence, and holds `result` so that it outlives the notify.
      result->lent.store(true, std::memory_order_relaxed);  // the taskqueue's lock publishes it
      keep = std::shared_ptr<const void>(nullptr, [result](const void*) { result->_return_lent(); });
    } else {
      auto owned = std::make_shared<Object::List>(iterable);
      items = owned.get();
      keep = std::move(owned);
    }
    state_->taskqueue.put(detail::TaskSequence{chunked_tasks(result->job, Object(func), mapper, items, std::move(keep), size), {}});
  }
  return MapResult(result);
}
// [pool-map-async]

IMapIterator Pool::imap(const Target& func, const Object::List& iterable, int chunksize) {
  return _imap(func, iterable, chunksize, true);
}

IMapUnorderedIterator Pool::imap_unordered(const Target& func, const Object::List& iterable, int chunksize) {
  return _imap(func, iterable, chunksize, false);
}

IMapIterator Pool::_imap(const Target& func, const Object::List& iterable, int chunksize, bool ordered) {
  _check_running();
  if (chunksize < 1) throw ValueError("Chunksize must be 1+, not " + std::to_string(chunksize));
  auto result = std::make_shared<detail::IMapImpl>();
  result->unordered = !ordered;
  state_->cache_add(result);
  auto items = std::make_shared<Object::List>(iterable);
  std::function<std::optional<detail::Task>()> next;
  if (chunksize == 1) {
    // Python: _guarded_task_generation(result._job, func, iterable):
    // task i is (job, i, func, (x,), {}).
    auto i = std::make_shared<std::size_t>(0);
    next = [job = result->job, f = Object(func), items, i]() -> std::optional<detail::Task> {
      if (*i >= items->size()) return std::nullopt;
      std::size_t k = (*i)++;
      return detail::Task{Object(Object::Tuple{{job, static_cast<std::int64_t>(k), f,
                                        Object::Tuple{{std::move((*items)[k])}}, Object::Dict{}}})};
    };
  } else {
    next = chunked_tasks(result->job, Object(func), Object::Global{"multiprocessing.pool", "mapstar"},
                         items.get(), items, static_cast<std::size_t>(chunksize));
  }
  detail::IMapImpl* raw = result.get();
  state_->taskqueue.put(detail::TaskSequence{std::move(next), [raw, keep = result](std::int64_t n) {
                                               raw->_set_length(n);
                                             }});
  return IMapIterator(result, chunksize > 1);
}

void Pool::close() {
  util::debug("closing pool");
  detail::PoolState& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.state != RUN) return;
    s.state = CLOSE;
    s.worker_handler_state = detail::HandlerState::CLOSE;
  }
  {
    // From now on the result handler reads every result (it must see the
    // sentinel and drain the cache before join()).
    std::lock_guard lock(s.read_mutex);
    s.read_changed.notify_all();
  }
  s.change_notifier->put(Object());
}

void Pool::terminate() {
  util::debug("terminating pool");
  {
    std::lock_guard lock(state_->mutex);
    state_->state = TERMINATE;
  }
  if (state_->terminate.still_active()) state_->terminate();
}

void Pool::join() {
  util::debug("joining pool");
  detail::PoolState& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.state == RUN) throw ValueError("Pool is still running");
    if (s.state != CLOSE && s.state != TERMINATE) throw ValueError("In unknown state");
  }
  if (s.worker_handler.joinable()) s.worker_handler.join();
  if (s.task_handler.joinable()) s.task_handler.join();
  if (s.result_handler.joinable()) s.result_handler.join();
  std::vector<detail::Worker*> workers;
  {
    std::lock_guard lock(s.mutex);
    for (auto& w : s.pool) workers.push_back(w.get());
  }
  for (auto* w : workers) w->join();
}

std::string Pool::repr() const {
  std::lock_guard lock(state_->mutex);
  return std::string("<multiprocessing.pool.") + (state_->threads ? "ThreadPool" : "Pool") +
         " state=" + state_->state + " pool_size=" + std::to_string(state_->pool.size()) + ">";
}

std::string Pool::_state() const {
  std::lock_guard lock(state_->mutex);
  return state_->state;
}

std::vector<pid_t> Pool::_worker_pids() const {
  std::lock_guard lock(state_->mutex);
  std::vector<pid_t> pids;
  for (auto& w : state_->pool) {
    if (auto pid = w->pid()) pids.push_back(*pid);
  }
  return pids;
}

std::size_t Pool::_pool_size() const {
  std::lock_guard lock(state_->mutex);
  return state_->pool.size();
}

}  // namespace multiprocessing::pool
