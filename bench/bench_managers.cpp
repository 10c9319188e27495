// bench/bench_managers.cpp — proxy calls of a SyncManager from a child
// process against a raw framed request/reply over a unix socket
// (bench-operations.md, operation 8, manager_dict_ops).
//
//   BM_Lib/set       d[i % 64] = i on a managed dict (DictProxy::setitem)
//   BM_Lib/get       d[i % 64]
//   BM_Lib/lock      lk.acquire(); lk.release() on a managed Lock (2 round trips)
//   BM_Lib/append    l.append(i) on a managed list
//   BM_Raw/<same>    the raw limit: a forked server on a filesystem AF_UNIX
//                    socket serving one forked client, each request and reply
//                    one framed message (4-byte big-endian length + payload,
//                    one write), padded to the pickled sizes a proxy sends
//                    and gets back (set 53 -> 25 bytes, get 50 -> 27,
//                    acquire and release 43 -> 25 each, append 45 -> 25); a
//                    64-slot table, a lock flag and a counter in the server
//
// The manager (fork context) and its proxies are made once, untimed; one
// forked client child per side warms up (64 keys, 200 gets and lock pairs)
// and then runs the batches this process asks for over a pipe, timing each
// itself with CLOCK_MONOTONIC.  One iteration = one batch of kOps ops; the
// summarizer turns the median batch time into ops/s.  bench/cpython_managers.py
// measures CPython the same way; bench/run_managers.sh runs both, alternating.
//
// With --scale=K1,K2,... only the scaling series run (bench/report.sh): k
// forked clients at once, each doing kScaleOps `d[k] = v` after a warm-up;
// the clients wait for one start signal and each times itself; a batch's
// time is from the first client's start to the last one's end:
//   BM_Scale_Clients_Lib/<k>   on one managed dict of a SyncManager
//   BM_Scale_Clients_Raw/<k>   on a raw server that serves each client from
//                              its own thread (as a manager's server does),
//                              the table under a mutex
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;
using mp::Object;

namespace {

constexpr std::int64_t kOps = 3000;
constexpr std::int64_t kKeys = 64;

using bench::now;

// ------------------------------------------------------------------ the library

/// Run `n` ops of kind `op` (0 set, 1 get, 2 lock, 3 append); seconds taken.
double run_lib_ops(int op, std::int64_t n, const mp::managers::DictProxy& d, const mp::managers::AcquirerProxy& lk,
                   const mp::managers::ListProxy& l) {
  double t0 = now();
  for (std::int64_t i = 0; i < n; ++i) {
    switch (op) {
      case 0: d.setitem(i % kKeys, i); break;
      case 1: d.getitem(i % kKeys); break;
      case 2: lk.acquire(); lk.release(); break;
      default: l.append(i); break;
    }
  }
  return now() - t0;
}

/// The library's client process: warm up, then for each (op, n) received run
/// the batch and send its time back; (-1, 0) ends it.
void lib_client(mp::managers::DictProxy d, mp::managers::AcquirerProxy lk, mp::managers::ListProxy l,
                mp::connection::Connection& conn) {
  for (std::int64_t k = 0; k < kKeys; ++k) d.setitem(k, k);
  run_lib_ops(1, 200, d, lk, l);
  run_lib_ops(2, 200, d, lk, l);
  while (true) {
    auto [op, n] = conn.recv().as<std::tuple<std::int64_t, std::int64_t>>();
    if (op < 0) return;
    conn.send(Object(run_lib_ops(static_cast<int>(op), n, d, lk, l)));
  }
}

struct LibSide {
  mp::managers::SyncManager manager = mp::get_context("fork").Manager();
  mp::managers::DictProxy d = manager.dict();
  mp::managers::AcquirerProxy lk = manager.Lock();
  mp::managers::ListProxy l = manager.list();
  std::unique_ptr<mp::BaseProcess> client;  // before conn: make_client() sets it
  mp::connection::Connection conn;

  LibSide() : conn(make_client()) {}
  mp::connection::Connection make_client() {
    auto [ours, theirs] = mp::connection::Pipe();
    client = mp::get_context("fork").Process({.target = &lib_client, .args = {d, lk, l, Object(theirs)}});
    client->start();
    return std::move(ours);
  }
  double batch(int op, std::int64_t n) {
    conn.send(Object::Tuple{{std::int64_t{op}, n}});
    return conn.recv().as<double>();
  }
  ~LibSide() {
    conn.send(Object::Tuple{{std::int64_t{-1}, std::int64_t{0}}});
    client->join();
  }
};

LibSide* lib = nullptr;  // made on first use, ended by main() before exit

// ------------------------------------------------------------------ the raw limit

// Request and reply sizes (payload bytes) per op, as a proxy's pickles are:
// set, get, acquire + release (two round trips), append.
constexpr std::size_t kRequest[] = {53, 50, 43, 45};
constexpr std::size_t kReply[] = {25, 27, 25, 25};

/// One framed message: the 4-byte big-endian length and the payload, in one
/// write, as Connection.send_bytes does for small messages.
void send_framed(int fd, char tag, std::size_t size, std::int64_t value) {
  char buf[4 + 64] = {};
  buf[0] = static_cast<char>(size >> 24);
  buf[1] = static_cast<char>(size >> 16);
  buf[2] = static_cast<char>(size >> 8);
  buf[3] = static_cast<char>(size);
  buf[4] = tag;
  std::memcpy(buf + 5, &value, sizeof value);
  bench::write_all(fd, buf, 4 + size);
}

/// read(4), then exactly the length it gives.  \return false at EOF.
bool recv_framed(int fd, char* payload, std::size_t& size) {
  unsigned char header[4];
  if (!bench::read_all(fd, reinterpret_cast<char*>(header), 4)) return false;
  size = (std::size_t{header[0]} << 24) | (std::size_t{header[1]} << 16) | (std::size_t{header[2]} << 8) | header[3];
  return size <= 64 && bench::read_all(fd, payload, size);
}

/// A listening AF_UNIX socket on a file in a fresh private directory under
/// /tmp; `path` and `where` are set to its name.  remove_socket() undoes it.
int listen_unix(std::string& path, sockaddr_un& where, int backlog) {
  char dir[] = "/tmp/bench-managers-XXXXXX";
  if (::mkdtemp(dir) == nullptr) std::abort();  // a private directory for the socket file
  path = std::string(dir) + "/server.sock";
  where.sun_family = AF_UNIX;
  std::snprintf(where.sun_path, sizeof where.sun_path, "%s", path.c_str());
  int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&where), sizeof where) != 0 || ::listen(listener, backlog) != 0) {
    std::abort();
  }
  return listener;
}

/// The socket file and its directory, once the server is gone.
void remove_socket(const std::string& path) {
  ::unlink(path.c_str());
  ::rmdir(path.substr(0, path.rfind('/')).c_str());
}

[[noreturn]] void raw_server(int listener) {
  int c = ::accept(listener, nullptr, nullptr);
  std::int64_t table[kKeys] = {};
  bool locked = false;
  std::int64_t appended = 0;
  char payload[64];
  std::size_t size;
  while (recv_framed(c, payload, size)) {
    std::int64_t value;
    std::memcpy(&value, payload + 1, sizeof value);
    switch (payload[0]) {
      case 's': table[value % kKeys] = value; send_framed(c, 'r', kReply[0], 0); break;
      case 'g': send_framed(c, 'r', kReply[1], table[value % kKeys]); break;
      case 'a': locked = true; send_framed(c, 'r', kReply[2], 1); break;
      case 'r': locked = false; send_framed(c, 'r', kReply[2], 0); break;
      default: ++appended; send_framed(c, 'r', kReply[3], 0); break;
    }
  }
  ::_exit(locked ? 1 : 0);
}

void raw_call(int fd, char tag, std::size_t request, std::int64_t value) {
  send_framed(fd, tag, request, value);
  char payload[64];
  std::size_t size;
  if (!recv_framed(fd, payload, size)) ::_exit(3);
}

[[noreturn]] void raw_client(const sockaddr_un& where, int commands, int results) {
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (::connect(s, reinterpret_cast<const sockaddr*>(&where), sizeof where) != 0) ::_exit(3);
  auto run = [s](int op, std::int64_t n) {
    double t0 = now();
    for (std::int64_t i = 0; i < n; ++i) {
      switch (op) {
        case 0: raw_call(s, 's', kRequest[0], i); break;
        case 1: raw_call(s, 'g', kRequest[1], i); break;
        case 2: raw_call(s, 'a', kRequest[2], 0); raw_call(s, 'r', kRequest[2], 0); break;
        default: raw_call(s, 'p', kRequest[3], i); break;
      }
    }
    return now() - t0;
  };
  for (std::int64_t k = 0; k < kKeys; ++k) raw_call(s, 's', kRequest[0], k);
  run(1, 200);
  run(2, 200);
  std::int64_t cmd[2];
  while (bench::read_all(commands, reinterpret_cast<char*>(cmd), sizeof cmd) && cmd[0] >= 0) {
    double t = run(static_cast<int>(cmd[0]), cmd[1]);
    bench::write_all(results, reinterpret_cast<const char*>(&t), sizeof t);
  }
  ::_exit(0);
}

struct RawSide {
  pid_t server = -1, client = -1;
  int commands = -1, results = -1;
  std::string path;

  RawSide() {
    sockaddr_un where{};
    int listener = listen_unix(path, where, 1);
    server = ::fork();
    if (server == 0) raw_server(listener);
    ::close(listener);
    int to_client[2], from_client[2];
    if (::pipe(to_client) != 0 || ::pipe(from_client) != 0) std::abort();
    client = ::fork();
    if (client == 0) {
      ::close(to_client[1]);
      ::close(from_client[0]);
      raw_client(where, to_client[0], from_client[1]);
    }
    ::close(to_client[0]);
    ::close(from_client[1]);
    commands = to_client[1];
    results = from_client[0];
  }
  double batch(int op, std::int64_t n) {
    std::int64_t cmd[2] = {op, n};
    bench::write_all(commands, reinterpret_cast<const char*>(cmd), sizeof cmd);
    double t = 0;
    if (!bench::read_all(results, reinterpret_cast<char*>(&t), sizeof t)) std::abort();
    return t;
  }
  ~RawSide() {
    std::int64_t cmd[2] = {-1, 0};
    bench::write_all(commands, reinterpret_cast<const char*>(cmd), sizeof cmd);
    ::waitpid(client, nullptr, 0);
    ::waitpid(server, nullptr, 0);
    ::close(commands);
    ::close(results);
    remove_socket(path);
  }
};

RawSide* raw = nullptr;  // made on first use, ended by main() before exit

// ------------------------------------------------------------------ scaling

constexpr std::int64_t kScaleOps = 1000;  // per client and batch

/// The three pipes a batch of clients shares: each client says it is ready
/// (one byte), waits for the start (one byte each), and writes its
/// {start, end} times (16 bytes: one atomic pipe write).
struct Batch {
  int ready[2], go[2], times[2];
  Batch() {
    if (::pipe(ready) != 0 || ::pipe(go) != 0 || ::pipe(times) != 0) std::abort();
  }
  ~Batch() {
    for (int fd : {ready[0], ready[1], go[0], go[1], times[0], times[1]}) ::close(fd);
  }
  /// A client's part: warm up, say ready, wait, run, report.
  template <class Ops>
  void client(Ops ops) const {
    ops(64);
    bench::write_all(ready[1], "r", 1);
    char g;
    if (!bench::read_all(go[0], &g, 1)) ::_exit(3);
    double t[2] = {now(), 0};
    ops(kScaleOps);
    t[1] = now();
    bench::write_all(times[1], reinterpret_cast<const char*>(t), sizeof t);
  }
  /// The parent's part, once k clients run: wait for all, start all, and
  /// return the first start to the last end.
  double run(std::int64_t k) const {
    std::vector<char> bytes(static_cast<std::size_t>(k), 'g');
    if (!bench::read_all(ready[0], bytes.data(), bytes.size())) std::abort();
    bench::write_all(go[1], bytes.data(), bytes.size());
    double first = 1e300, last = 0;
    for (std::int64_t i = 0; i < k; ++i) {
      double t[2];
      if (!bench::read_all(times[0], reinterpret_cast<char*>(t), sizeof t)) std::abort();
      first = std::min(first, t[0]);
      last = std::max(last, t[1]);
    }
    return last - first;
  }
};

mp::managers::SyncManager* scale_manager = nullptr;  // made on first use, ended by main()

void BM_Scale_Clients_Lib(benchmark::State& state) {
  if (scale_manager == nullptr) scale_manager = new mp::managers::SyncManager(mp::get_context("fork").Manager());
  mp::managers::DictProxy d = scale_manager->dict();
  std::int64_t k = state.range(0);
  for (auto _ : state) {
    Batch batch;
    std::vector<std::unique_ptr<mp::BaseProcess>> clients;
    for (std::int64_t c = 0; c < k; ++c) {
      clients.push_back(mp::get_context("fork").Process({.target = [&batch, &d] {
        batch.client([&d](std::int64_t n) {
          for (std::int64_t i = 0; i < n; ++i) d.setitem(i % kKeys, i);
        });
      }}));
      clients.back()->start();
    }
    state.SetIterationTime(batch.run(k));
    for (auto& c : clients) c->join();
  }
}

/// The raw server of the scaling series: a thread per accepted client, one
/// table for all under a mutex; runs until killed.
[[noreturn]] void raw_threaded_server(int listener) {
  // Killed with the benchmark program, however that ends: nothing else would
  // stop this accept loop.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::int64_t table[kKeys] = {};
  std::mutex mutex;
  while (true) {
    int c = ::accept(listener, nullptr, nullptr);  // the next client's connection
    if (c < 0) continue;
    std::thread([c, &table, &mutex] {
      char payload[64];
      std::size_t size;
      while (recv_framed(c, payload, size)) {
        std::int64_t value;
        std::memcpy(&value, payload + 1, sizeof value);
        {
          std::lock_guard<std::mutex> hold(mutex);
          table[value % kKeys] = value;
        }
        send_framed(c, 'r', kReply[0], 0);
      }
      ::close(c);  // the client left
    }).detach();
  }
}

struct RawScaleServer {
  pid_t pid = -1;
  std::string path;
  sockaddr_un where{};
  RawScaleServer() {
    int listener = listen_unix(path, where, 64);  // up to 16 clients connect at once
    pid = ::fork();
    if (pid == 0) raw_threaded_server(listener);
    ::close(listener);  // the server's now
  }
  ~RawScaleServer() {
    ::kill(pid, SIGKILL);  // it serves until killed; it holds nothing to flush
    ::waitpid(pid, nullptr, 0);
    remove_socket(path);
  }
};

RawScaleServer* raw_scale = nullptr;  // made on first use, ended by main()

void BM_Scale_Clients_Raw(benchmark::State& state) {
  if (raw_scale == nullptr) raw_scale = new RawScaleServer();
  std::int64_t k = state.range(0);
  for (auto _ : state) {
    Batch batch;
    std::vector<pid_t> clients;
    for (std::int64_t c = 0; c < k; ++c) {
      pid_t pid = ::fork();  // one raw client process
      if (pid == 0) {
        int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(s, reinterpret_cast<const sockaddr*>(&raw_scale->where), sizeof raw_scale->where) != 0) ::_exit(3);
        batch.client([s](std::int64_t n) {
          for (std::int64_t i = 0; i < n; ++i) raw_call(s, 's', kRequest[0], i);
        });
        ::_exit(0);
      }
      clients.push_back(pid);
    }
    state.SetIterationTime(batch.run(k));
    for (pid_t pid : clients) ::waitpid(pid, nullptr, 0);
  }
}

/// One side's benchmark: the side made on first use, then one batch of kOps
/// ops of kind range(0) per iteration, timed by the client process.
template <class Side>
void run_batches(benchmark::State& state, Side*& side) {
  if (side == nullptr) side = new Side();
  for (auto _ : state) state.SetIterationTime(side->batch(static_cast<int>(state.range(0)), kOps));
}

void BM_Lib(benchmark::State& state) { run_batches(state, lib); }
void BM_Raw(benchmark::State& state) { run_batches(state, raw); }

void op_names(benchmark::internal::Benchmark* b) {
  b->ArgName("op");
  for (int op = 0; op < 4; ++op) b->Arg(op);
}

}  // namespace

MP_REGISTER_TARGET(lib_client);

// One iteration = one batch of kOps ops; 5 repetitions (the definition's 5 reps).
BENCHMARK(BM_Lib)->Apply(op_names)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Raw)->Apply(op_names)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);

int main(int argc, char** argv) {
  mp::freeze_support();
  std::vector<std::int64_t> scale = bench::take_scale(argc, argv);
  // One batch per iteration, 16 client batches per repetition at least.
  bench::register_scale("BM_Scale_Clients_Lib", BM_Scale_Clients_Lib, scale, 16);
  bench::register_scale("BM_Scale_Clients_Raw", BM_Scale_Clients_Raw, scale, 16);
  int rc = bench::run_interleaved(argc, argv, /*scale=*/!scale.empty());
  delete raw;
  delete lib;
  delete raw_scale;
  delete scale_manager;
  return rc;
}
