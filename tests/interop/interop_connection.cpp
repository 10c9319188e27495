// tests/interop/interop_connection.cpp — this library and CPython as each other's
// peer over multiprocessing.connection:
//   C++ Listener <-> Python Client  and  Python Listener <-> C++ Client,
// over AF_UNIX and AF_INET (127.0.0.1), with an authkey, for the 3.11 handshake
// (the machine's python3) and the 3.12 one (tests/interop/handshake312.py), or
// the handshakes named after PEER_PY ("native": a real 3.12 or 3.13), with
// the C++ side using its default (3.11) challenge or a {sha256} one; then a
// wrong key in both directions.  Payloads go both ways with send_bytes.
//
//   interop_connection PYTHON3 PEER_PY [HANDSHAKE...]
// Exit 0: all sessions passed; 1: a failure (printed); 77: no python3 (skipped).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <tuple>
#include <utility>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "multiprocessing/connection.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction.hpp"
#include "python_peer.hpp"

namespace mp = multiprocessing;
namespace conn = multiprocessing::connection;

namespace {

using interop::LIMIT;
using interop::Python;
using interop::read_address;
using interop::spawn;

/// The same list as peer.py's payloads().
std::vector<std::string> payloads() {
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  return {"", "x", all, std::string(16384, 'a'), std::string(16385, 'b'), big};
}

/// recv_bytes, bounded in time.
std::string recv(conn::Connection& c) {
  if (!c.poll(LIMIT)) throw mp::TimeoutError("no message within the limit");
  return c.recv_bytes();
}

/// The values peer.py's expected_from_cxx() lists, built here.
std::vector<mp::Object> cxx_values() {
  using O = mp::Object;
  return {
      O::List{2.25, mp::None{}, "junk"},
      O::Dict{{O("a"), O(std::int64_t{1})},
              {O("b"), O::List{std::int64_t{1}, std::int64_t{2}, std::int64_t{3}}},
              {O("c"), O("xyz")}},
      O::Tuple{{std::int64_t{1}, std::numeric_limits<std::int64_t>::min(), "h\xc3\xa9"}},
      O::Set{std::int64_t{1}, std::int64_t{2}},
      O::FrozenSet{std::int64_t{3}},
      mp::Bytearray(std::string("\x00\xff", 2)),
      mp::Bytes("hello"),
  };
}

/// The C++ half of peer.py's exchange(): echo every payload (checking it) and
/// every value, then send cxx_values().
void echo_payloads(conn::Connection& c) {
  for (const std::string& expected : payloads()) {
    std::string got = recv(c);
    if (got != expected) {
      throw mp::ValueError("payload of " + std::to_string(expected.size()) +
                           " bytes arrived as " + std::to_string(got.size()) + " bytes");
    }
    c.send_bytes(got);
  }
  // Values: echo each through this library's unpickler and pickler, until
  // peer.py says 'end of values'.  Then a list holding one list twice, made here.
  for (;;) {
    if (!c.poll(LIMIT)) throw mp::TimeoutError("no value within the limit");
    mp::Object value = c.recv();
    if (value == mp::Object("end of values")) break;
    c.send(value);
  }
  mp::Object inner = mp::Object::List{std::int64_t{1}, std::int64_t{2}};
  c.send(mp::Object::List{inner, inner});
  for (const mp::Object& v : cxx_values()) c.send(v);
  if (recv(c) != "done") throw mp::ValueError("expected b'done'");
  c.send_bytes("bye");
}

struct Session {
  std::string python_version;  // "3.11", "3.12" or "native": what peer.py speaks
  std::string cxx_challenge;   // "" (the library's default, 3.11) or "sha256"
  bool cxx_listens;            // C++ Listener <-> Python Client, else the reverse
  std::string family;          // "AF_UNIX" or "AF_INET"
  std::string python_key = "secret";
  std::string cxx_key = "secret";

  std::string name() const {
    return std::string(cxx_listens ? "C++ Listener <-> Python Client" : "Python Listener <-> C++ Client") +
           ", " + family + ", python " + python_version + " handshake, C++ challenge " +
           (cxx_challenge.empty() ? "3.11 (default)" : "{" + cxx_challenge + "}") +
           (python_key != cxx_key ? ", WRONG KEY" : "");
  }
};

/// The C++ side's handshake with the challenge form the session asks for.
void handshake(conn::Connection& c, const Session& s, bool server) {
  mp::Bytes key(s.cxx_key);
  double deadline = mp::os::monotonic() + LIMIT;
  if (server) {
    conn::deliver_challenge(c, key, s.cxx_challenge, deadline);
    conn::answer_challenge(c, key, deadline);
  } else {
    conn::answer_challenge(c, key, deadline);
    conn::deliver_challenge(c, key, s.cxx_challenge, deadline);
  }
}

/// Run one session; returns "" on success, else what went wrong.
std::string run(const std::string& python3, const std::string& peer_py, const Session& s) {
  bool wrong_key = s.python_key != s.cxx_key;
  std::string cxx_error;
  int python_status = -1;
  try {
    if (s.cxx_listens) {
      std::optional<conn::Address> where;
      if (s.family == "AF_INET") where = conn::InetAddress{"127.0.0.1", 0};
      // The default challenge goes through the Listener's own authkey path;
      // {sha256} through the functions, as a 3.12 Listener would call them.
      std::optional<mp::Bytes> authkey;
      if (s.cxx_challenge.empty()) authkey = mp::Bytes(s.cxx_key);
      conn::Listener listener(where, s.family, 1, authkey);
      const conn::Address& a = listener.address();
      std::string text = s.family == "AF_INET"
                             ? "127.0.0.1:" + std::to_string(std::get<conn::InetAddress>(a).second)
                             : std::get<std::string>(a);
      Python python = spawn({python3, peer_py, "client", text, s.python_key, s.python_version}, false);
      try {
        if (conn::wait({conn::Waitable(listener)}, LIMIT).empty()) {
          throw mp::TimeoutError("python client did not connect");
        }
        conn::Connection c = listener.accept();
        if (!s.cxx_challenge.empty()) handshake(c, s, /*server=*/true);
        echo_payloads(c);
      } catch (const mp::Exception& e) {
        cxx_error = mp::exception_type_name(e) + ": " + e.what();
      }
      python_status = python.finish();
    } else {
      Python python = spawn({python3, peer_py, "listener", s.family == "AF_INET" ? "inet" : "unix",
                             s.python_key, s.python_version},
                            true);
      try {
        conn::Address address = conn::parse_address(read_address(python));
        std::optional<mp::Bytes> authkey;
        if (s.cxx_challenge.empty()) authkey = mp::Bytes(s.cxx_key);
        conn::Connection c = conn::Client(address, s.family, authkey);
        if (!s.cxx_challenge.empty()) handshake(c, s, /*server=*/false);
        echo_payloads(c);
      } catch (const mp::Exception& e) {
        cxx_error = mp::exception_type_name(e) + ": " + e.what();
      }
      python_status = python.finish();
    }
  } catch (const mp::Exception& e) {
    return std::string("setup failed: ") + e.what();
  }
  if (wrong_key) {
    // Both sides must refuse: AuthenticationError here, exit status 3 there.
    if (cxx_error.rfind("AuthenticationError", 0) != 0) {
      return "C++ side did not raise AuthenticationError (" + cxx_error + ")";
    }
    if (python_status != 3) return "python exited " + std::to_string(python_status) + ", not 3";
    std::cout << "      C++ side: " << cxx_error << "\n";
    return "";
  }
  if (!cxx_error.empty()) return "C++ side: " + cxx_error;
  if (python_status != 0) return "python exited " + std::to_string(python_status);
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: interop_connection PYTHON3 PEER_PY [HANDSHAKE...]\n";
    return 2;
  }
  std::string python3 = argv[1], peer_py = argv[2];
  std::vector<std::string> versions = interop::handshakes(argc, argv);
  // Skip (77, ctest's SKIP_RETURN_CODE) when there is no python3 to talk to.
  {
    std::string probe = python3 + " -c 'import multiprocessing.connection' >/dev/null 2>&1";
    if (python3.empty() || python3.find("NOTFOUND") != std::string::npos ||
        std::system(probe.c_str()) != 0) {
      std::cout << "interop_connection: SKIPPED: no usable python3 (" << python3
                << "); install python3 to run the interoperability tests\n";
      return 77;
    }
  }
  std::vector<Session> sessions;
  for (const std::string& version : versions) {
    for (const char* challenge : {"", "sha256"}) {
      for (bool cxx_listens : {true, false}) {
        for (const char* family : {"AF_UNIX", "AF_INET"}) {
          sessions.push_back({version, challenge, cxx_listens, family});
        }
      }
    }
  }
  for (const std::string& version : versions) {
    for (bool cxx_listens : {true, false}) {
      Session s{version, "", cxx_listens, "AF_UNIX"};
      s.python_key = "not the secret";
      sessions.push_back(s);
    }
  }
  int failed = 0;
  for (const Session& s : sessions) {
    std::string error = run(python3, peer_py, s);
    std::cout << (error.empty() ? "ok    " : "FAIL  ") << s.name()
              << (error.empty() ? "" : ": " + error) << "\n";
    if (!error.empty()) ++failed;
  }
  std::cout << sessions.size() - failed << " of " << sessions.size() << " sessions passed\n";
  return failed == 0 ? 0 : 1;
}
