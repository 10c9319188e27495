// examples/tour.cpp — the guided tour: each lesson's example run in turn,
// shown beside the Python program it mirrors (examples/NAME.py) and the docs
// page that explains it.  It uses the library to do so: each example runs in
// a child started with multiprocessing::Process, whose target replaces itself
// with the example program (execv), and the tour joins it and reads its exit
// code.  A lesson with a server (the remote managers) starts it the same way
// in the background, on a unix socket in a private directory, and terminates
// it when the clients are done.
//
// Usage: tour [--list] [--slow] [NAME...]
//   --list   one line per lesson: its name and title
//   NAME...  run only these lessons, in the order given
//   --slow   run the lessons at the seeds' own pace (1 s sleeps and ticks);
//            by default the tour shortens them and takes well under a minute
//   (--fast, the default, is accepted for older scripts)
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;

namespace {

/// One program the lesson runs.  "{sock}" in args stands for the socket path
/// of the lesson's private directory.
struct Run {
  const char* program;
  std::vector<std::string> args;       ///< always given
  std::vector<std::string> fast = {};  ///< given unless --slow: shorter sleeps
  bool background = false;             ///< a server: started first, terminated last
  int expected_exit = 0;               ///< 1 for a client refused by the server
};

struct Stop {
  const char* name;   ///< `tour NAME`
  const char* title;  ///< one line, for --list and the heading
  const char* shows;  ///< what to look for in the output
  const char* page;   ///< the docs page that explains it
  std::vector<const char*> mirrors;  ///< the Python programs, in examples/
  std::vector<Run> runs;
};

// The lessons, in the order of the tour: memory copied or shared; fork,
// waitpid and pipes; lost updates and locks; shared memory; the other
// synchronization objects; start methods; queues and pools; managers; a
// manager over the network.
const std::vector<Stop>& stops() {
  static const std::vector<Stop> all = {
      {"process_basics", "Process(target=f): start(), join(), narrated",
       "log_to_stderr(SUBDEBUG) makes the library narrate the child's life as\n"
       "Python's does; repr() goes from 'initial' to 'started' to 'stopped\n"
       "exitcode=0', and to -SIGTERM after terminate().",
       "docs/walkthrough_start.md", {"process_basics.py"}, {{"process_basics", {}}}},
      {"global_counter", "A global counter: 5 threads vs 5 processes",
       "Threads share the process's memory: count_thread reaches 5 and every\n"
       "thread prints the same pid.  Each process raises its own copy of\n"
       "count_process, so the parent's stays 0.",
       "docs/walkthrough_start.md", {"global_counter.py"}, {{"global_counter", {}}}},
      {"shared_list", "One list, appended to by 3 threads, then 3 processes",
       "The threads append to one list.  Each process appends to its own copy,\n"
       "made by fork(): the children print the parent's address (the same\n"
       "virtual address in another copy of the memory); the parent's list\n"
       "stays [].",
       "docs/walkthrough_start.md", {"shared_list.py"},
       {{"shared_list", {}, {"--delay", "0.1"}}}},
      {"os_waitpid", "os.waitpid(-1, WNOHANG) reaping two forked children",
       "(0, 0) while the children run; then one (pid, 0) per ended child; then\n"
       "no child is left and waitpid raises ChildProcessError.",
       "docs/walkthrough_start.md", {"os_waitpid.py"}, {{"os_waitpid", {}}}},
      {"os_pipe", "os.pipe(): parent and child, two siblings, 3 children",
       "A pipe made before fork() is shared by both processes; each closes the\n"
       "end it does not use, so that the reader sees EOF when the writers are\n"
       "done.  Process uses two such pipes to start each child.",
       "docs/walkthrough_start.md", {"os_pipe.py"}, {{"os_pipe", {}}}},
      {"connection_pipe", "The same three talks with Pipe() and Process",
       "Pipe(duplex=False) gives two Connections; send_bytes() frames each\n"
       "message with its length, so recv_bytes() gets it whole.",
       "docs/wire_format.md", {"connection_pipe.py"}, {{"connection_pipe", {}}}},
      {"counter_lesson", "Value('i', 0) += 1 by 10 processes: lost updates",
       "`v.value += 1` is a read, then a write, each under the Value's lock but\n"
       "not both: another process can read the old value in between and one\n"
       "increment is lost (rarely in C++; often once the window is widened\n"
       "to 0.5 ms).  A Lock around the increment, get_lock(), or a RawValue\n"
       "with a Lock: always 200.",
       "docs/counter_lesson.md", {"counter_lesson.py"},
       {{"counter_lesson", {}, {"--runs", "2"}}}},
      {"add_sub_lock", "Two processes add and subtract 1000 times under a Lock",
       "Each read-sleep-write step holds the Lock, so no step is lost however\n"
       "the two processes take turns: the shared Value ends at 0.",
       "docs/counter_lesson.md", {"add_sub_lock.py"},
       {{"add_sub_lock", {}, {"--sleep", "0.0002"}}}},
      {"value_array", "Value('d') and Array('i', range(10)) changed by a child",
       "Value and Array live in a MAP_SHARED arena, so the parent sees what the\n"
       "child wrote: the docs' 3.1415927 and negated list, then seed 004's\n"
       "3.14 and a[0] = 5.",
       "docs/counter_lesson.md", {"value_array.py"}, {{"value_array", {}}}},
      {"value_scheduler", "A scheduler thread raises worker processes' Values",
       "Each worker holds a Value('i', 1).  The scheduler in the parent raises\n"
       "them every five ticks and the workers, in other processes, print the\n"
       "new values: the memory is shared.",
       "docs/counter_lesson.md", {"value_scheduler.py"},
       {{"value_scheduler", {}, {"--tick", "0.1"}}}},
      {"sync_primitives", "Lock and RLock, an Event, a Condition",
       "A Lock is not reentrant (a second acquire fails), an RLock is.  One\n"
       "Event.set() wakes both waiting processes.  The Condition's consumer\n"
       "sleeps in wait_for() until the producer changes the Value and\n"
       "notifies it.  Each object is made of POSIX semaphores.",
       "docs/walkthrough_start.md", {"sync_primitives.py"},
       {{"sync_primitives", {}, {"--pause", "0.2"}}}},
      {"start_methods", "The three start methods: fork, spawn and forkserver",
       "The parent sets counter = 1 before starting each child.  A fork child\n"
       "is a copy of the parent and sees 1; a spawn child is a new run of the\n"
       "program, and a forkserver child is forked from one: they see 0.",
       "docs/start_methods.md", {"start_methods.py"}, {{"start_methods", {}}}},
      {"queue_producer_consumer", "A Queue between processes; a JoinableQueue",
       "put() hands the item to a feeder thread that pickles it into a pipe;\n"
       "get() in another process reads it under a lock.  None says the\n"
       "producer is done.  A JoinableQueue also counts the tasks: join() waits\n"
       "until task_done() was called for each.",
       "docs/walkthrough_queue.md", {"queue_producer_consumer.py"},
       {{"queue_producer_consumer", {}}}},
      {"pool_apply_async", "Pool(4).apply_async(test, (i, d)) for 100 indices",
       "Each task fills its own copy of the dict in a worker: the parent's\n"
       "stays {}.  What a task returns comes back pickled; a callback in the\n"
       "parent collects one result per index.",
       "docs/walkthrough_pool.md", {"pool_apply_async.py"}, {{"pool_apply_async", {}}}},
      {"thread_pool_completion", "Tasks of 7, 3, 4, 5, 1 units in a thread pool",
       "Results come as they are ready: 1, 3, 4, 5, 7; the whole takes about\n"
       "7 units, the longest task, because the five run at once.",
       "docs/walkthrough_pool.md", {"thread_pool_completion.py"},
       {{"thread_pool_completion", {}, {"--unit", "0.2"}}}},
      {"pool_word_count", "A word count with Pool.map, summed in the parent",
       "map() cuts the 1000 lines into chunks, sends each chunk pickled to a\n"
       "worker, and returns the counts in order; the parent adds them up.",
       "docs/walkthrough_pool.md", {"pool_word_count.py"}, {{"pool_word_count", {}}}},
      {"manager_list", "Manager().list(): one list for 3 processes",
       "shared_list's processes each had a copy.  A manager's list lives in\n"
       "the manager's server process; each append() is a request to it, so\n"
       "all nine items land in the one list.  id() differs per process: each\n"
       "has its own proxy.",
       "docs/managers_map.md", {"manager_list.py"}, {{"manager_list", {}, {"--delay", "0.1"}}}},
      {"manager_value_array", "A manager's Value('d'), Array('i') and list",
       "The child changes all three through proxies; the parent then asks the\n"
       "server, which holds the values, and sees the changes.  print(arr)\n"
       "is the server's str() of its array.",
       "docs/managers_map.md", {"manager_value_array.py"}, {{"manager_value_array", {}}}},
      {"manager_dict", "A manager dict, the nested-dict pitfall and its fixes",
       "1: workers fill a managed dict.  2: d['test'][idx] = idx changes a copy\n"
       "returned by the server: {'test': {}}.  3: reading the row and writing\n"
       "it back works, but two workers' writes can cross.  4: a manager Lock\n"
       "around the read and the write keeps all 100.",
       "docs/managers_map.md", {"manager_dict.py"}, {{"manager_dict", {}}}},
      {"remote_manager", "The docs' remote manager: a queue over a socket",
       "A BaseManager server registers get_queue and serves it; one client\n"
       "connects with the authkey and puts 'hello', another gets it.  Either\n"
       "side can be the Python original: the wire is CPython's.",
       "docs/managers_map.md", {"remote_manager_server.py", "remote_manager_client.py"},
       {{"remote_manager_server", {"--address", "{sock}", "--authkey", "tour"}, {}, true},
        {"remote_manager_client", {"--address", "{sock}", "--authkey", "tour"}},
        {"remote_manager_client", {"--address", "{sock}", "--authkey", "tour", "--get"}}}},
      {"sync_manager", "A SyncManager served over a socket, and its client",
       "The server holds every SyncManager typeid.  A client with the wrong\n"
       "authkey fails the challenge (AuthenticationError) and the server goes\n"
       "on; the right key makes a dict, a list and a Lock in the server.",
       "docs/managers_map.md", {"sync_manager_server.py", "sync_manager_client.py"},
       {{"sync_manager_server", {"--address", "{sock}", "--authkey", "tour"}, {}, true},
        {"sync_manager_client", {"--address", "{sock}", "--authkey", "wrong"}, {}, false, 1},
        {"sync_manager_client", {"--address", "{sock}", "--authkey", "tour"}}}},
  };
  return all;
}

/// The directory of this executable: the examples are built beside it.
std::string here() {
  char path[PATH_MAX] = {};
  // readlink, because argv[0] may be a relative path or a name found in PATH.
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  std::string exe(path, n > 0 ? static_cast<std::size_t>(n) : 0);
  return exe.substr(0, exe.rfind('/') + 1);
}

/// The child's target: become the example program.
void run_example(const std::string& path, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // execv: the example replaces the child, keeping its stdout and stderr.
  ::execv(path.c_str(), argv.data());
  // Only reached if exec failed: the child reports it and exits 1.
  throw mp::OSError("execv " + path, errno);
}

/// Print a Python mirror from the source tree, as it is.
void show_python(const char* file) {
  const std::string path = std::string(MP_EXAMPLES_SOURCE_DIR) + "/" + file;
  std::ifstream in(path);
  std::printf("--- Python: examples/%s ---\n", file);
  if (!in) {
    std::printf("(not found: %s)\n", path.c_str());
    return;
  }
  for (std::string line; std::getline(in, line);) std::printf("%s\n", line.c_str());
}

std::vector<std::string> with_socket(const std::vector<std::string>& args, const std::string& sock) {
  std::vector<std::string> out = args;
  for (auto& a : out) {
    if (a == "{sock}") a = sock;
  }
  return out;
}

/// The run as a shell would show it; SOCK stands for the lesson's socket.
std::string command_line(const Run& run, const std::vector<std::string>& args) {
  std::string text = std::string("$ examples/") + run.program;
  for (const auto& a : args) text += " " + (a == "{sock}" ? std::string("SOCK") : a);
  return text + (run.background ? " &" : "");
}

/// Start one run of a lesson as a child that execs the example.
std::unique_ptr<mp::Process> start(const std::string& dir, const Run& run,
                                   const std::vector<std::string>& args) {
  auto p = std::make_unique<mp::Process>(mp::ProcessOptions{
      .target = [path = dir + run.program, args] { run_example(path, args); },
      .name = run.program});
  p->start();
  return p;
}

/// Wait up to 10 s for a server's socket to appear.
bool wait_for_socket(const std::string& sock) {
  for (int i = 0; i < 200; ++i) {
    struct stat st {};
    // stat: the server binds the socket once it is ready to accept.
    if (::stat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
    mp::os::sleep(0.05);
  }
  return false;
}

/// Run one lesson; returns true if every program did what it should.
bool run_stop(const Stop& stop, std::size_t number, std::size_t count, bool slow) {
  std::printf("\n=== %zu/%zu  %s ===\n%s\n%s\n\nExplained in %s\n", number, count, stop.name,
              stop.title, stop.shows, stop.page);
  std::vector<std::string> sources;
  for (const Run& run : stop.runs) {
    if (std::find(sources.begin(), sources.end(), run.program) == sources.end()) {
      sources.push_back(run.program);
      std::printf("The C++ is examples/%s.cpp\n", run.program);
    }
  }
  std::printf("\n");
  for (const char* file : stop.mirrors) show_python(file);
  std::fflush(stdout);  // before the children write to the same stdout

  std::string dir, sock;
  bool needs_socket = false;
  for (const Run& run : stop.runs) needs_socket = needs_socket || run.background;
  if (needs_socket) {
    char tmpl[] = "/tmp/mp-tour-XXXXXX";
    // mkdtemp: a private directory (mode 0700) for the server's socket.
    if (::mkdtemp(tmpl) == nullptr) throw mp::OSError("mkdtemp", errno);
    dir = tmpl;
    sock = dir + "/sock";
    std::printf("--- SOCK is %s ---\n", sock.c_str());
  }
  const std::string exe_dir = here();
  bool ok = true;
  std::unique_ptr<mp::Process> server;
  for (const Run& run : stop.runs) {
    std::vector<std::string> args = run.args;
    if (!slow) args.insert(args.end(), run.fast.begin(), run.fast.end());
    std::printf("--- C++: %s ---\n", command_line(run, args).c_str());
    std::fflush(stdout);
    args = with_socket(args, sock);
    if (run.background) {
      server = start(exe_dir, run, args);
      if (!wait_for_socket(sock)) {
        std::printf("--- no socket from %s after 10 s ---\n", run.program);
        ok = false;
        break;
      }
      continue;
    }
    auto p = start(exe_dir, run, args);
    p->join();
    int code = *p->exitcode();
    std::printf("--- exit code %d%s ---\n", code,
                run.expected_exit == 1 ? " (expected 1: AuthenticationError)" : "");
    if (code != run.expected_exit) ok = false;
  }
  if (server) {
    server->terminate();  // a server serves until it is terminated
    server->join();
    std::printf("--- server %s terminated ---\n", server->name().c_str());
  }
  if (!dir.empty()) {
    // unlink + rmdir: leave no socket file or directory behind.
    ::unlink(sock.c_str());
    ::rmdir(dir.c_str());
  }
  std::fflush(stdout);
  return ok;
}

int list_names(std::FILE* out) {
  for (const Stop& stop : stops()) std::fprintf(out, "%-24s %s\n", stop.name, stop.title);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool slow = false;
  std::vector<const Stop*> chosen;
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--list") return list_names(stdout);
    if (arg == "--slow") {
      slow = true;
      continue;
    }
    if (arg == "--fast") continue;
    const Stop* found = nullptr;
    for (const Stop& stop : stops()) {
      if (arg == stop.name) found = &stop;
    }
    if (found == nullptr) {
      std::fprintf(stderr, "tour: unknown lesson '%s'; the lessons are:\n", arg.c_str());
      list_names(stderr);
      return 2;
    }
    chosen.push_back(found);
  }
  if (chosen.empty()) {
    for (const Stop& stop : stops()) chosen.push_back(&stop);
  }
  int failures = 0;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    if (!run_stop(*chosen[i], i + 1, chosen.size(), slow)) ++failures;
  }
  std::printf("\nTour complete: %zu lesson%s, %d failed.\n", chosen.size(),
              chosen.size() == 1 ? "" : "s", failures);
  return failures == 0 ? 0 : 1;
}
