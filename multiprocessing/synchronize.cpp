// multiprocessing/synchronize.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/synchronize.py and
// Modules/_multiprocessing/semaphore.c (the POSIX branch); see synchronize.hpp.
#include "multiprocessing/synchronize.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <random>

#include "multiprocessing/context.hpp"
#include "multiprocessing/dummy/dummy.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/heap.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/resource_tracker.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::synchronize {

namespace {

/// glibc's sem_open() and sem_close() keep one table of the semaphores this
/// process has mapped, under a lock of their own that fork() does not reset:
/// a child forked while another thread was inside either would wait forever
/// in its own first sem_open().  Every call of the two goes through this
/// mutex, which fork() holds: no thread of the library is inside them at the
/// instant of fork().
std::mutex& sem_table_lock() {
  static auto* lock = [] {
    auto* created = new std::mutex;  // never destroyed: fork() may take it at exit
    util::_hold_across_fork(*created);
    return created;
  }();
  return *lock;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool sem_table_lock_made_at_start = (sem_table_lock(), true);

/// sem_open(3) under sem_table_lock().
sem_t* sem_open_guarded(const char* name, int oflag, mode_t mode = 0, unsigned value = 0) {
  std::lock_guard guard(sem_table_lock());
  return oflag & O_CREAT ? ::sem_open(name, oflag, mode, value) : ::sem_open(name, oflag);
}

/// sem_close(3) under sem_table_lock().
void sem_close_guarded(sem_t* handle) {
  std::lock_guard guard(sem_table_lock());
  ::sem_close(handle);
}

}  // namespace


namespace {

/// Trace mode's line for an acquire or a release: "SemLock acquire: /mp-x (Lock), count 1".
void trace_semlock(const SemLock::Impl& self, const char* what) {
  const char* kind = self.kind == RECURSIVE_MUTEX ? "RLock" : self.maxvalue == 1 ? "Lock" : "Semaphore";
  util::_trace(std::string("SemLock ") + what + ": " + self.name + " (" + kind + "), count " +
               std::to_string(self.count.load(std::memory_order_relaxed)));
}

/// Python: tempfile._RandomNameSequence: 8 characters of [a-z0-9_], from a
/// generator re-seeded when the pid changes (a forked child must not repeat
/// its parent's names).
std::string random_name() {
  static const char characters[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
  thread_local pid_t seeded_for = 0;
  thread_local std::mt19937_64 generator;
  if (seeded_for != os::getpid()) {
    std::string seed = os::urandom(8);
    std::uint64_t value = 0;
    for (unsigned char c : seed) value = (value << 8) | c;
    generator.seed(value);
    seeded_for = os::getpid();
  }
  std::string name;
  for (int i = 0; i < 8; ++i) name += characters[generator() % (sizeof characters - 1)];
  return name;
}

/// Python: process.current_process().name, plus "|<thread name>" outside the
/// main thread, as Lock.__repr__ shows the owner.
std::string owner_name() {
  std::string name = current_process().name();
  std::string thread = dummy::current_process().name();
  if (thread != "MainThread") name += "|" + thread;
  return name;
}

std::string lock_repr(const SemLock& lock) {
  // Python: Lock.__repr__
  std::string name;
  if (lock._is_mine()) name = owner_name();
  else if (lock._get_value() == 1) name = "None";
  else if (lock._count() > 0) name = "SomeOtherThread";
  else name = "SomeOtherProcess";
  return "<Lock(owner=" + name + ")>";
}

std::string rlock_repr(const SemLock& lock) {
  // Python: RLock.__repr__
  std::string name, count;
  if (lock._is_mine()) {
    name = owner_name();
    count = std::to_string(lock._count());
  } else if (lock._get_value() == 1) {
    name = "None";
    count = "0";
  } else if (lock._count() > 0) {
    name = "SomeOtherThread";
    count = "nonzero";
  } else {
    name = "SomeOtherProcess";
    count = "nonzero";
  }
  return "<RLock(" + name + ", " + count + ")>";
}

}  // namespace

// ------------------------------------------------------------------ SemLock

SemLock::SemLock(int kind, unsigned value, unsigned maxvalue, BaseContext* ctx)
    : impl_(std::make_shared<Impl>()) {
  if (kind != RECURSIVE_MUTEX && kind != SEMAPHORE) throw ValueError("unrecognized kind");
  if (value > maxvalue || maxvalue > static_cast<unsigned>(SEM_VALUE_MAX)) throw ValueError("invalid value");
  if (ctx == nullptr) ctx = &_default_context().get_context();
  // [counter-sem-open]
  // Python: a fork context's semaphore is unlinked at once: children inherit
  // the mapping, nothing else needs the name, and an unlinked name cannot
  // leak if every process is killed.  Spawned children need the name.
  bool unlink_now = ctx->get_start_method() == "fork";

  impl_->kind = kind;
  impl_->maxvalue = maxvalue;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = current_process()._config.semprefix + "-" + random_name();
    // O_EXCL: a name already in use (by anyone) is never shared by accident.
    sem_t* handle = sem_open_guarded(name.c_str(), O_CREAT | O_EXCL, 0600, value);
    if (handle != SEM_FAILED) {
      impl_->handle = handle;
      impl_->name = name;
      break;
    }
    if (errno != EEXIST) raise_os_error("sem_open", errno);
  }
  // Python: FileExistsError("cannot find name for semaphore"), no errno attached.
  if (impl_->handle == SEM_FAILED) throw FileExistsError("cannot find name for semaphore");
  // [counter-sem-open]
  util::debug("created semlock with handle " + impl_->name);

  if (unlink_now) {
    ::sem_unlink(impl_->name.c_str());
    impl_->name_unlinked = true;
  } else {
    // Python: the name must stay for children that open it by name, so the
    // resource tracker learns it (and unlinks it if this process dies
    // first), and a finalizer unlinks it and tells the tracker
    // (SemLock._cleanup).
    std::string name = impl_->name;
    try {
      resource_tracker::register_(name, "semaphore");
    } catch (...) {
      ::sem_unlink(name.c_str());
      throw;
    }
    impl_->cleanup = util::Finalize(
        [name] {
          ::sem_unlink(name.c_str());
          try {
            resource_tracker::unregister(name, "semaphore");
          } catch (const std::exception& e) {
            // Run from a destructor: report rather than throw, as Python's
            // finalizers print and go on.
            util::sub_warning(std::string("resource_tracker unregister failed: ") + e.what());
          }
        },
        0, "_cleanup");
  }
  Impl* raw = impl_.get();
  impl_->after_fork =
      util::register_after_fork([raw] { raw->count.store(0, std::memory_order_relaxed); });
}

// ------------------------------------------------------------------ pickling

namespace {
const char* const kForkContextMessage =
    "A SemLock created in a fork context is being shared with a process in a spawn context. "
    "This is not supported. Please use the same context to create multiprocessing objects "
    "and Process.";

// The unpickler may name these classes (ForkingPickler's allow-list).
const bool synchronize_globals_registered = [] {
  for (const char* name : {"Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier"}) {
    reduction::ForkingPickler::register_global("multiprocessing.synchronize", name);
  }
  return true;
}();

const Object::Tuple& state_tuple(const Object& obj, const char* qualname, std::size_t size) {
  const Object::Reduced* r = obj.reduced();
  const Object::Tuple* t = nullptr;
  if (r != nullptr && r->callable.module == "multiprocessing.synchronize" && r->state.size() == 1) {
    t = std::get_if<Object::Tuple>(&r->state[0].variant());
  }
  if (t == nullptr || t->items.size() != size) {
    throw UnpicklingError(std::string("expected a pickled ") + qualname + ", got " + obj.repr());
  }
  return *t;
}

/// A Reduced that checks, when pickled, that a child is being started, and
/// then pickles as `plain`.
Object::Reduced spawning_only(Object::Reduced plain, std::string type_name) {
  Object::Reduced r = plain;
  r.reduce = [plain = Object(std::move(plain)), type_name] {
    assert_spawning(type_name);
    return plain;
  };
  return r;
}
}  // namespace

Object SemLock::_reduce(const char* qualname) const {
  const Impl& self = *impl_;
  Object::Tuple state{{Object(), std::int64_t{self.kind}, std::int64_t{self.maxvalue}, self.name}};
  Object::Reduced plain{{"multiprocessing.synchronize", qualname}, {}, true, {Object(state)}};
  Object::Reduced r = plain;
  r.local = impl_;  // under fork the child's args hold this very semaphore
  r.reduce = [plain = Object(std::move(plain)), type = std::string(qualname),
              fork_ctx = self.name_unlinked] {
    assert_spawning(type);
    if (fork_ctx) throw RuntimeError(kForkContextMessage);
    return plain;
  };
  return r;
}

Object SemLock::_reduce() const {
  if (kind() == RECURSIVE_MUTEX) return _reduce("RLock");
  return _reduce(maxvalue() == 1 ? "Lock" : "Semaphore");
}

SemLock::Rebuilt SemLock::_rebuild(const Object& obj) {
  const Object::Tuple& state = state_tuple(obj, "SemLock", 4);
  if (const auto& local = obj.reduced()->local) {
    return Rebuilt{std::static_pointer_cast<Impl>(std::const_pointer_cast<void>(local))};
  }
  auto impl = std::make_shared<Impl>();
  impl->kind = static_cast<int>(state.items[1].as<std::int64_t>());
  impl->maxvalue = static_cast<unsigned>(state.items[2].as<std::int64_t>());
  impl->name = state.items[3].as<std::string>();
  // Python: _multiprocessing.SemLock._rebuild: open the creator's semaphore
  // by name.  No O_CREAT: if it is gone, say so rather than make a new one.
  impl->handle = sem_open_guarded(impl->name.c_str(), 0);
  if (impl->handle == SEM_FAILED) raise_os_error("sem_open", errno);
  Impl* raw = impl.get();
  impl->after_fork =
      util::register_after_fork([raw] { raw->count.store(0, std::memory_order_relaxed); });
  util::debug("recreated blocker with handle " + impl->name);
  return Rebuilt{std::move(impl)};
}

/// Python: SemLock.acquire, every case: an RLock this thread holds already, a
/// busy semaphore (wait, with or without a deadline), EINTR, errors.
/// SemLock::acquire calls it when its short path did not take the lock.
bool SemLock::_acquire_slow(Impl& self, bool block, std::optional<double> timeout, int tried_errno) {
  if (tried_errno == 0 && self.kind == RECURSIVE_MUTEX && self.is_mine()) {
    self.add_count(1);
    if (util::trace_enabled()) trace_semlock(self, "acquire");
    return true;
  }
  // Try first without blocking, as semaphore.c does (unless the short path
  // just did and found the semaphore busy).
  int res = -1;
  int err = tried_errno;
  while (err == 0 || err == EINTR) {
    res = ::sem_trywait(self.handle);
    err = res < 0 ? errno : -1;
  }
  if (res < 0 && err == EAGAIN && block) {
    // Could not acquire at once: block, until the deadline if there is one.
    timespec deadline{};
    if (timeout) {
      double seconds = std::max(0.0, *timeout);
      ::clock_gettime(CLOCK_MONOTONIC, &deadline);
      double whole = std::floor(seconds);
      deadline.tv_sec += static_cast<time_t>(whole);
      deadline.tv_nsec += static_cast<long>((seconds - whole) * 1e9);
      if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
      }
    }
    do {
      // sem_clockwait on CLOCK_MONOTONIC: a change of the wall clock does not
      // stretch or shorten the timeout (semaphore.c uses sem_timedwait).
      res = timeout ? ::sem_clockwait(self.handle, CLOCK_MONOTONIC, &deadline) : ::sem_wait(self.handle);
      err = res < 0 ? errno : -1;
    } while (res < 0 && err == EINTR);
  }
  if (res < 0) {
    if (err == EAGAIN || err == ETIMEDOUT) return false;
    raise_os_error("sem_wait", err);
  }
  self.took();
  if (util::trace_enabled()) trace_semlock(self, "acquire");
  return true;
}

/// Python: SemLock.release, every case: an RLock (owner and depth checked),
/// a semaphore at its maximum (ValueError), a failing sem_getvalue or
/// sem_post.  SemLock::release calls it when its short path does not apply.
void SemLock::_release_slow(Impl& self) {
  if (self.kind == RECURSIVE_MUTEX) {
    if (!self.is_mine()) throw AssertionError("attempt to release recursive lock not owned by thread");
    if (self.count.load(std::memory_order_relaxed) > 1) {
      self.add_count(-1);
      if (util::trace_enabled()) trace_semlock(self, "release");
      return;
    }
  } else {
    // Not an absolute guarantee that the value never exceeds maxvalue (another
    // process may release between these two calls), as in semaphore.c.
    int sval = 0;
    if (::sem_getvalue(self.handle, &sval) < 0) raise_os_error("sem_getvalue", errno);
    if (sval >= 0 && static_cast<unsigned>(sval) >= self.maxvalue) {
      throw ValueError("semaphore or lock released too many times");
    }
  }
  // Count down *before* sem_post: the moment the semaphore is posted another
  // thread of this process may acquire it and count up.  (semaphore.c posts
  // first; the GIL keeps that safe in CPython, and nothing does here.)
  self.add_count(-1);
  if (::sem_post(self.handle) < 0) {
    int err = errno;
    self.add_count(1);
    raise_os_error("sem_post", err);
  }
  if (util::trace_enabled()) trace_semlock(self, "release");
}

void SemLock::_trace_op(const Impl& self, const char* what) { trace_semlock(self, what); }

SemLock::Impl::~Impl() {
  cleanup();  // unlink the name first, if it was kept
  // sem_close unmaps the semaphore from this process only; other processes
  // that inherited it keep theirs.
  if (handle != SEM_FAILED) sem_close_guarded(handle);
}

int SemLock::_count() const { return impl_->count.load(std::memory_order_relaxed); }
bool SemLock::_is_mine() const { return impl_->is_mine(); }

int SemLock::_get_value() const {
  int sval = 0;
  if (::sem_getvalue(impl_->handle, &sval) < 0) raise_os_error("sem_getvalue", errno);
  return sval < 0 ? 0 : sval;  // some systems report waiters as a negative value
}

bool SemLock::_is_zero() const { return _get_value() == 0; }
void SemLock::_after_fork() { impl_->count.store(0, std::memory_order_relaxed); }
const std::string& SemLock::name() const { return impl_->name; }
int SemLock::kind() const { return impl_->kind; }
unsigned SemLock::maxvalue() const { return impl_->maxvalue; }

// ------------------------------------------------------------------ the lock kinds

Semaphore::Semaphore(unsigned value, BaseContext* ctx) : SemLock(SEMAPHORE, value, static_cast<unsigned>(SEM_VALUE_MAX), ctx) {}

std::string Semaphore::repr() const { return "<Semaphore(value=" + std::to_string(get_value()) + ")>"; }

BoundedSemaphore::BoundedSemaphore(unsigned value, BaseContext* ctx)
    : Semaphore(SEMAPHORE, value, value, ctx) {}

std::string BoundedSemaphore::repr() const {
  return "<BoundedSemaphore(value=" + std::to_string(get_value()) +
         ", maxvalue=" + std::to_string(maxvalue()) + ")>";
}

Lock::Lock(BaseContext* ctx) : SemLock(SEMAPHORE, 1, 1, ctx) {}
std::string Lock::repr() const { return lock_repr(*this); }

RLock::RLock(BaseContext* ctx) : SemLock(RECURSIVE_MUTEX, 1, 1, ctx) {}
std::string RLock::repr() const { return rlock_repr(*this); }

// ------------------------------------------------------------------ Condition

Condition::Condition(std::optional<SemLock> lock, BaseContext* ctx)
    : lock_(lock ? *lock : RLock(ctx)),
      sleeping_count_(0, ctx),
      woken_count_(0, ctx),
      wait_semaphore_(0, ctx) {}

// MP_ASSIGNABLE: the assignment "condition" replaces wait() and notify().
MP_ASSIGNABLE bool Condition::wait(std::optional<double> timeout) {
  if (!lock_._is_mine()) throw AssertionError("must acquire() condition before using wait()");
  // Indicate that this thread is going to sleep.
  sleeping_count_.release();
  // Release the lock, as many times as it is held (an RLock may be nested).
  int count = lock_._count();
  for (int i = 0; i < count; ++i) lock_.release();
  bool notified = false;
  try {
    // Wait for a notification or the timeout.
    notified = wait_semaphore_.acquire(true, timeout);
  } catch (...) {
    woken_count_.release();
    for (int i = 0; i < count; ++i) lock_.acquire();
    throw;
  }
  // Indicate that this thread has woken, then re-acquire the lock.
  woken_count_.release();
  for (int i = 0; i < count; ++i) lock_.acquire();
  return notified;
}

MP_ASSIGNABLE void Condition::notify(long n) {
  if (!lock_._is_mine()) throw AssertionError("lock is not owned");
  if (wait_semaphore_.acquire(false)) throw AssertionError("notify: wait semaphore was not zero");
  // To take account of timeouts since the last notify*(), subtract woken_count
  // from sleeping_count and re-zero woken_count.
  while (woken_count_.acquire(false)) {
    if (!sleeping_count_.acquire(false)) {
      throw AssertionError("notify: Bug in sleeping_count.acquire- res should not be False");
    }
  }
  long sleepers = 0;
  while (sleepers < n && sleeping_count_.acquire(false)) {
    wait_semaphore_.release();  // wake up one sleeper
    ++sleepers;
  }
  if (sleepers > 0) {
    for (long i = 0; i < sleepers; ++i) woken_count_.acquire();  // wait for a sleeper to wake
    // Re-zero wait_semaphore in case some timeouts just happened.
    while (wait_semaphore_.acquire(false)) {
    }
  }
}

void Condition::notify_all() { notify(LONG_MAX); }

bool _wait_for(const std::function<void(std::optional<double>)>& wait,
               const std::function<bool()>& predicate, std::optional<double> timeout) {
  bool result = predicate();
  if (result) return result;
  std::optional<double> endtime;
  std::optional<double> waittime;
  if (timeout) endtime = os::monotonic() + *timeout;
  while (!result) {
    if (endtime) {
      waittime = *endtime - os::monotonic();
      if (*waittime <= 0) break;
    }
    wait(waittime);
    result = predicate();
  }
  return result;
}

bool Condition::wait_for(const std::function<bool()>& predicate, std::optional<double> timeout) {
  return _wait_for([this](std::optional<double> t) { wait(t); }, predicate, timeout);
}

Object Condition::_reduce() const {
  Object::Tuple state{{lock_._reduce(),
                       sleeping_count_._reduce("Semaphore"), woken_count_._reduce("Semaphore"),
                       wait_semaphore_._reduce("Semaphore")}};
  return spawning_only({{"multiprocessing.synchronize", "Condition"}, {}, true, {Object(state)}},
                       "Condition");
}

Condition Condition::_rebuild(const Object& obj) {
  const Object::Tuple& state = state_tuple(obj, "Condition", 4);
  return Condition(SemLock(SemLock::_rebuild(state.items[0])),
                   Semaphore(SemLock::_rebuild(state.items[1])),
                   Semaphore(SemLock::_rebuild(state.items[2])),
                   Semaphore(SemLock::_rebuild(state.items[3])));
}

std::string Condition::repr() const {
  int waiters = sleeping_count_.get_value() - woken_count_.get_value();
  std::string lock = lock_.kind() == RECURSIVE_MUTEX ? rlock_repr(lock_) : lock_repr(lock_);
  return "<Condition(" + lock + ", " + std::to_string(waiters) + ")>";
}

// ------------------------------------------------------------------ Event

Event::Event(BaseContext* ctx) : cond_(Lock(ctx), ctx), flag_(0, ctx) {}

std::string Event::repr() {
  return "<Event at " + id_repr(this) + (is_set() ? " set>" : " unset>");
}

bool Event::is_set() {
  std::lock_guard guard(cond_);
  if (flag_.acquire(false)) {
    flag_.release();
    return true;
  }
  return false;
}

void Event::set() {
  std::lock_guard guard(cond_);
  flag_.acquire(false);
  flag_.release();
  cond_.notify_all();
}

void Event::clear() {
  std::lock_guard guard(cond_);
  flag_.acquire(false);
}

bool Event::wait(std::optional<double> timeout) {
  std::lock_guard guard(cond_);
  if (flag_.acquire(false)) {
    flag_.release();
  } else {
    cond_.wait(timeout);
  }
  if (flag_.acquire(false)) {
    flag_.release();
    return true;
  }
  return false;
}

Object Event::_reduce() const {
  Object::Tuple state{{cond_._reduce(), flag_._reduce("Semaphore")}};
  return spawning_only({{"multiprocessing.synchronize", "Event"}, {}, true, {Object(state)}}, "Event");
}

Event Event::_rebuild(const Object& obj) {
  const Object::Tuple& state = state_tuple(obj, "Event", 2);
  return Event(Condition::_rebuild(state.items[0]), Semaphore(SemLock::_rebuild(state.items[1])));
}

// ------------------------------------------------------------------ Barrier

namespace {
constexpr int kFilling = 0, kDraining = 1, kResetting = -1, kBroken = -2;
}  // namespace

BarrierBase::BarrierBase(int parties, std::function<void()> action, std::optional<double> timeout)
    : parties_(parties), action_(std::move(action)), timeout_(timeout) {
  if (parties < 1) throw ValueError("parties must be >= 1");
}

Barrier::Barrier(int parties, std::function<void()> action, std::optional<double> timeout,
                 BaseContext* ctx)
    : BarrierBase(parties, std::move(action), timeout),
      cond_(std::nullopt, ctx) {  // Python: ctx.Condition(), an RLock inside
  // Python: wrapper = heap.BufferWrapper(struct.calcsize('i') * 2): two ints
  // in the shared heap, which a forked child shares and a spawned one maps
  // again from the arena's fd.
  wrapper_ = std::make_shared<heap::BufferWrapper>(static_cast<std::ptrdiff_t>(2 * sizeof(int)));
  array_ = reinterpret_cast<int*>(wrapper_->create_memoryview());
  array_[0] = kFilling;  // Python: self._state = 0
  array_[1] = 0;         // Python: self._count = 0
}

Barrier::Barrier(int parties, std::function<void()> action, std::optional<double> timeout,
                 Condition cond, std::shared_ptr<heap::BufferWrapper> wrapper)
    : BarrierBase(parties, std::move(action), timeout),
      cond_(std::move(cond)),
      wrapper_(std::move(wrapper)),
      array_(reinterpret_cast<int*>(wrapper_->create_memoryview())) {}

Object Barrier::_reduce() const {
  // Python pickles the action by its module and qualified name; here it is
  // the name MP_REGISTER_TARGET gave a plain function.
  std::optional<std::string> action_name;
  if (action_) {
    if (auto* function = action_.target<void (*)()>()) action_name = spawn::_target_name(Target(*function));
  }
  Object::Tuple state{{std::int64_t{parties_}, action_name ? Object(*action_name) : Object(),
                       timeout_ ? Object(*timeout_) : Object(), cond_._reduce(), wrapper_->_reduce()}};
  Object::Reduced plain{{"multiprocessing.synchronize", "Barrier"}, {}, true, {Object(state)}};
  Object::Reduced r = plain;
  r.local = std::make_shared<const Barrier>(*this);  // under fork the child's args hold this barrier
  bool action_lost = action_ && !action_name;
  r.reduce = [plain = Object(std::move(plain)), action_lost] {
    assert_spawning("Barrier");
    if (action_lost) {
      throw PicklingError(
          "Can't pickle the action of a Barrier: under the spawn and forkserver start methods it "
          "crosses to the child by name, so it must be a plain function void() registered with "
          "MP_REGISTER_TARGET(function) (a lambda or other callable object cannot be found by name)");
    }
    return plain;
  };
  return r;
}

Barrier Barrier::_rebuild(const Object& obj) {
  const Object::Tuple& state = state_tuple(obj, "Barrier", 5);
  if (const auto& local = obj.reduced()->local) return *std::static_pointer_cast<const Barrier>(local);
  std::function<void()> action;
  if (!state.items[1].is_none()) {
    Target target = spawn::_find_target(state.items[1].as<std::string>());
    action = [target] { target(Args{}); };
  }
  std::optional<double> timeout;
  if (!state.items[2].is_none()) timeout = state.items[2].as<double>();
  return Barrier(static_cast<int>(state.items[0].as<std::int64_t>()), std::move(action), timeout,
                 Condition::_rebuild(state.items[3]), heap::BufferWrapper::_rebuild(state.items[4]));
}

// threading.Barrier's algorithm (BarrierBase), over the hooks each Barrier
// supplies.  Held is Python's `with self._cond:`.
struct BarrierBase::Held {
  explicit Held(const BarrierBase& barrier) : self(barrier) { self._cond_acquire(); }
  ~Held() { self._cond_release(); }
  const BarrierBase& self;
};

int BarrierBase::wait(std::optional<double> timeout) {
  if (!timeout) timeout = timeout_;
  Held held(*this);
  _enter();  // block while the barrier drains or resets
  int index = _count();
  _count() += 1;
  struct Leave {  // Python: the `finally:` of wait()
    BarrierBase& self;
    ~Leave() {
      self._count() -= 1;
      self._exit();  // wake whoever waits for the barrier to drain
    }
  } leave{*this};
  if (index + 1 == parties_) {
    _release();  // the last to arrive releases everyone
  } else {
    _wait(timeout);
  }
  return index;
}

void BarrierBase::_enter() {
  _cond_wait_for([this] { return _state() != kDraining && _state() != kResetting; }, std::nullopt);
  if (_state() < 0) throw BrokenBarrierError();
}

void BarrierBase::_release() {
  try {
    if (action_) action_();
    _state() = kDraining;
    _cond_notify_all();
  } catch (...) {
    _break();  // the action failed: nobody may pass
    throw;
  }
}

void BarrierBase::_wait(std::optional<double> timeout) {
  if (!_cond_wait_for([this] { return _state() != kFilling; }, timeout)) {
    _break();  // timed out: break the barrier for everyone
    throw BrokenBarrierError();
  }
  if (_state() < 0) throw BrokenBarrierError();
}

void BarrierBase::_exit() {
  if (_count() == 0 && (_state() == kResetting || _state() == kDraining)) {
    _state() = kFilling;
    _cond_notify_all();
  }
}

void BarrierBase::reset() {
  Held held(*this);
  if (_count() > 0) {
    // Parties are waiting: make them leave (with BrokenBarrierError); the
    // last to leave sets the state back to filling.
    if (_state() == kFilling || _state() == kBroken) _state() = kResetting;
  } else {
    _state() = kFilling;
  }
  _cond_notify_all();
}

void BarrierBase::abort() {
  Held held(*this);
  _break();
}

void BarrierBase::_break() {
  _state() = kBroken;
  _cond_notify_all();
}

int BarrierBase::n_waiting() const {
  // Without the lock, as Python's property: a snapshot, which may be stale
  // by the time the caller looks at it.  The reads are atomic (see the
  // hooks), so they race with no write.  Taking the lock instead would make
  // an action that reads n_waiting deadlock on dummy::Barrier's plain Lock.
  return _state() == kFilling ? _count() : 0;
}

bool BarrierBase::broken() const { return _state() == kBroken; }

std::string Barrier::repr() const {
  std::string head = "<multiprocessing.synchronize.Barrier at " + id_repr(this) + ": ";
  if (broken()) return head + "broken>";
  return head + "waiters=" + std::to_string(n_waiting()) + "/" + std::to_string(parties()) + ">";
}

}  // namespace multiprocessing::synchronize
