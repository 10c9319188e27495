// examples/queue_producer_consumer.cpp — producers and consumers over a Queue,
// the pattern the Python docs teach with queue.Queue and multiprocessing.Queue.
// Seed 002 says why a Queue is the light way to share data: "a Queue uses pipes
// and locks, and starts no extra process" (a Manager does).
//
// Part 1, a Queue and a sentinel.  Python:
//   def producer(q):
//       for i in range(5):
//           q.put(i)
//       q.put(None)                  # the sentinel: nothing more will come
//
//   q = Queue()
//   p = Process(target=producer, args=(q,)); p.start()
//   for item in iter(q.get, None):
//       print('consumer got', item)
//   p.join()
//
// Part 2, a JoinableQueue: the parent waits in join() until every task put has
// been marked done with task_done(), whichever worker took it.  Python:
//   def worker(tasks, results):
//       for n in iter(tasks.get, None):
//           results.put(n * n)
//           tasks.task_done()
//       tasks.task_done()             # the sentinel is a task too
//
//   tasks, results = JoinableQueue(), Queue()
//   workers = [Process(target=worker, args=(tasks, results)) for i in range(2)]
//   for w in workers: w.start()
//   for n in range(6): tasks.put(n)
//   tasks.join()                     # every task done
//   print(sorted(results.get() for n in range(6)))
//   for w in workers: tasks.put(None)
//   tasks.join()
//
// Run it as `queue_producer_consumer [fork|spawn|forkserver]` (fork by default).
#include <multiprocessing.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace mp = multiprocessing;

/// Part 1's producer: five items, then the None sentinel.  It returns at once;
/// its feeder thread writes what is still buffered before the process exits.
void producer(mp::queues::Queue q) {
  for (std::int64_t i = 0; i < 5; ++i) q.put(i);
  q.put(mp::None{});
}
MP_REGISTER_TARGET(producer);

/// Part 2's worker: square each task until the None sentinel, marking each done.
void worker(mp::queues::JoinableQueue tasks, mp::queues::Queue results) {
  while (true) {
    mp::Object n = tasks.get();
    if (n.is_none()) break;
    results.put(n.as<std::int64_t>() * n.as<std::int64_t>());
    tasks.task_done();
  }
  tasks.task_done();  // the sentinel is a task too
}
MP_REGISTER_TARGET(worker);

int main(int argc, char** argv) {
  mp::freeze_support();  // in a spawned child: run the target and exit here
  auto& ctx = mp::get_context(argc > 1 ? argv[1] : "fork");

  std::printf("Queue: a producer process puts 0..4, then None\n");
  auto q = ctx.Queue();
  auto p = ctx.Process({.target = producer, .args = {q}});
  p->start();
  while (true) {
    mp::Object item = q.get();  // blocks until the producer's feeder has written
    if (item.is_none()) break;
    std::printf("consumer got %s\n", item.repr().c_str());
  }
  std::printf("consumer got None: the producer is done\n");
  p->join();
  std::printf("producer exited with code %d\n", *p->exitcode());

  std::printf("\nJoinableQueue: 2 worker processes square 6 tasks, the parent waits in join()\n");
  auto tasks = ctx.JoinableQueue();
  auto results = ctx.Queue();
  std::vector<std::unique_ptr<mp::BaseProcess>> workers;
  for (int i = 0; i < 2; ++i) workers.push_back(ctx.Process({.target = worker, .args = {tasks, results}}));
  for (auto& w : workers) w->start();
  for (std::int64_t n = 0; n < 6; ++n) tasks.put(n);
  tasks.join();  // returns once task_done() has been called 6 times
  std::printf("join() returned: every task is done\n");
  std::vector<std::int64_t> squares;
  for (int n = 0; n < 6; ++n) squares.push_back(results.get().as<std::int64_t>());
  std::sort(squares.begin(), squares.end());  // the workers finish in any order
  std::string text;
  for (std::int64_t s : squares) text += (text.empty() ? "" : ", ") + std::to_string(s);
  std::printf("sorted results: [%s]\n", text.c_str());
  for (std::size_t i = 0; i < workers.size(); ++i) tasks.put(mp::None{});
  tasks.join();
  int failed = 0;
  for (auto& w : workers) {
    w->join();
    if (*w->exitcode() != 0) ++failed;
  }
  std::printf("workers stopped by None: %d of %zu exited with code 0\n", static_cast<int>(workers.size()) - failed,
              workers.size());
  return *p->exitcode() + failed;
}
