// examples/tour.cpp — the guided tour: runs each lesson example in turn and says
// what it shows.  It uses the library to do so: each example runs in a child
// started with multiprocessing::Process, whose target replaces itself with the
// example program (execv), and the tour joins it and reads its exit code.
//
// Usage: tour [--fast]     (--fast shortens the sleeps of the shared-list lesson)
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

struct Stop {
  const char* program;
  std::vector<std::string> args;
  const char* title;
  const char* shows;
};

std::string here() {
  char path[PATH_MAX] = {};
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  std::string exe(path, n > 0 ? static_cast<std::size_t>(n) : 0);
  return exe.substr(0, exe.rfind('/') + 1);
}

void run_example(const std::string& path, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(path.c_str(), argv.data());
  // Only reached if exec failed: the child reports it and exits 1.
  throw mp::OSError("execv " + path, errno);
}

}  // namespace

int main(int argc, char** argv) {
  bool fast = argc > 1 && std::strcmp(argv[1], "--fast") == 0;
  const std::vector<Stop> stops = {
      {"process_basics", {}, "Process(target=f).start() and join(), narrated",
       "log_to_stderr(SUBDEBUG) makes the library narrate the child's life as Python's does;\n"
       "repr() shows 'initial', 'started', 'stopped exitcode=0', and -SIGTERM after terminate()."},
      {"global_counter", {}, "A global counter: 5 threads vs 5 processes",
       "Threads share the process's memory, so count_thread reaches 5 and every thread prints\n"
       "the same pid.  Each process raises its own copy of count_process: the parent's stays 0."},
      {"shared_list", fast ? std::vector<std::string>{"--delay", "0.1"} : std::vector<std::string>{},
       "One list, appended to by 3 threads and then by 3 processes",
       "The threads append to one list.  Each process appends to its own copy, made by fork():\n"
       "the children print the parent's address (the same virtual address, another copy of the\n"
       "memory) and the parent's list stays []."},
      {"os_waitpid", {}, "os.waitpid(-1, WNOHANG) reaping two children",
       "(0, 0) while the children run; then one (pid, 0) per ended child; then no children\n"
       "are left and waitpid raises ChildProcessError."},
      {"os_pipe", {}, "Pipes between a parent and a child, two siblings, and three children",
       "A pipe made before fork() is shared by both processes; each closes the end it does not\n"
       "use, so that the reader sees EOF when the writers are done.  Process uses two such pipes."},
      {"counter_lesson", fast ? std::vector<std::string>{"--runs", "2"} : std::vector<std::string>{},
       "Value('i', 0) raised by 10 processes x 20: lost updates, and three fixes",
       "`v.value += 1` is a read and then a write, each under the Value's lock but not both:\n"
       "another process can read the old value in between, and one increment is lost.  In C++\n"
       "that window is narrow and losses are rare; widened to 0.5 ms they are many.  A Lock around\n"
       "the whole increment, the Value's get_lock(), or a RawValue with a Lock: always 200."},
      {"add_sub_lock", fast ? std::vector<std::string>{"--sleep", "0.0002"} : std::vector<std::string>{},
       "Two processes add and subtract 1000 times under one Lock",
       "Each read-sleep-write step holds the Lock, so no step is lost however the two\n"
       "processes take turns: the shared Value ends at 0."},
      {"value_array", {}, "Value('d') and Array('i', range(10)) changed by a child",
       "The Value and the Array live in a MAP_SHARED arena of the heap, so the parent sees what\n"
       "the child wrote: 3.1415927 and the negated list (the Python docs), 3.14 and a[0] = 5 (seed 004)."},
      {"value_scheduler", fast ? std::vector<std::string>{"--tick", "0.1"} : std::vector<std::string>{},
       "A scheduler thread raises each worker process's Value; the workers print it",
       "Each worker holds a Value('i', 1).  The scheduler in the parent raises them every five\n"
       "ticks, and the workers, in other processes, print the new values: the memory is shared."},
      {"queue_producer_consumer", {}, "A producer and a consumer over a Queue; workers over a JoinableQueue",
       "put() hands the item to a feeder thread that pickles it and writes it to a pipe; get() in\n"
       "another process reads it under a lock.  A None sentinel says the producer is done.  A\n"
       "JoinableQueue also counts the tasks put: join() waits until task_done() was called for each."},
      {"pool_apply_async", {}, "Pool(4).apply_async(test, (i, d)) for 100 indices (seed 003)",
       "Each task fills its own copy of the dict in a worker process: the parent's stays {}.\n"
       "What a task returns comes back pickled; a callback in the parent collects one per index."},
      {"thread_pool_completion", fast ? std::vector<std::string>{"--unit", "0.2"} : std::vector<std::string>{},
       "Five tasks sleeping 7, 3, 4, 5, 1 units in a ThreadPool (seed 002)",
       "imap_unordered yields each result as it is ready: 1, 3, 4, 5, 7, and the whole takes\n"
       "about 7 units, the longest task, because the five run at once."},
      {"pool_word_count", {}, "A word count with Pool.map: map in the workers, reduce in the parent",
       "map() cuts the 1000 lines into chunks (len / (4 * workers), rounded up), sends each\n"
       "chunk pickled to a worker, and returns the dicts in order; the parent adds them up."},
  };
  const std::string dir = here();
  int failures = 0;
  for (std::size_t i = 0; i < stops.size(); ++i) {
    const Stop& stop = stops[i];
    std::printf("\n=== %zu/%zu  %s ===\n%s\n\n--- output of examples/%s ---\n", i + 1, stops.size(),
                stop.title, stop.shows, stop.program);
    std::fflush(stdout);
    mp::Process p({.target = [&] { run_example(dir + stop.program, stop.args); },
                   .name = stop.program});
    p.start();
    p.join();
    std::printf("--- %s exited with code %d ---\n", stop.program, *p.exitcode());
    if (*p.exitcode() != 0) ++failures;
  }
  std::printf("\nTour complete: %zu lessons, %d failed.\n", stops.size(), failures);
  return failures == 0 ? 0 : 1;
}
