// tests/gdb/gdb_printers_target.cpp — the program that tests/gdb/gdb_printers.sh
// stops in gdb to print each kind of object the pretty-printers know
// (tools/gdb/multiprocessing_printers.py): processes in three states, the two
// ends of a pipe, a Lock, a held RLock, a Semaphore, Objects holding each kind
// of Python value, a Queue, and a manager's dict proxy.
//
// Exit status: 0 when everything was made and cleaned up.
#include <cstdio>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

namespace {

void child_work() {}

// gdb stops here (`break stop_here`, then `up`); noinline, so that the
// breakpoint is there at every optimisation level.
[[gnu::noinline]] void stop_here() { std::printf("gdb_printers_target: objects ready\n"); }

}  // namespace

int main() {
  auto& ctx = mp::get_context("fork");
  // Processes: one not started, one that ran and was joined.
  // (References, so that `print unstarted` needs no help from libstdc++'s
  // own gdb scripts to look through the unique_ptr.)
  auto unstarted_owner = ctx.Process({.target = child_work, .name = "Unstarted"});
  auto finished_owner = ctx.Process({.target = child_work});
  mp::BaseProcess& unstarted = *unstarted_owner;
  mp::BaseProcess& finished = *finished_owner;
  finished.start();
  finished.join();
  // Connections: a one-way pipe (read end, write end) and a duplex pair.
  auto [reader, writer] = mp::Pipe(false);
  auto [duplex, duplex_peer] = mp::Pipe();
  // SemLocks.
  auto lock = ctx.Lock();
  auto rlock = ctx.RLock();
  rlock.acquire();
  rlock.acquire();
  auto semaphore = ctx.Semaphore(3);
  // Objects.
  mp::Object none;
  mp::Object flag(true);
  mp::Object number(std::int64_t{42});
  mp::Object real(2.5);
  mp::Object text("hello 'bob'");
  mp::Object data(mp::Bytes("ab\x01"));
  mp::Object list(mp::Object::List{std::int64_t{1}, "two", 3.0});
  mp::Object single(mp::Object::Tuple{{std::int64_t{1}}});
  mp::Object dict(mp::Object::Dict{{"a", mp::Object::List{}}, {std::int64_t{2}, mp::Object()}});
  // A manager and a proxy of a dict it holds (started before the queue's
  // feeder thread: a fork is best made while the process has one thread).
  auto manager = mp::Manager();
  auto shared = manager.dict();
  shared.setitem("k", std::int64_t{1});
  // A Queue with one item sent.
  auto queue = ctx.Queue();
  queue.put(std::int64_t{7});

  stop_here();

  rlock.release();
  rlock.release();
  (void)queue.get();
  queue.close();
  queue.join_thread();
  manager.shutdown();
  return 0;
}
