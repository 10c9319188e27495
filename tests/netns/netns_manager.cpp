// tests/netns/netns_manager.cpp — the two sides of the remote-manager test
// across network namespaces (tests/netns/remote_manager_netns.sh).
//
//   netns_manager serve HOST:PORT KEY    a SyncManager's server, served until
//                                        a client sends 'shutdown'; exits 0
//   netns_manager client HOST:PORT KEY   waits for the server (up to 30 s),
//                                        checks that a wrong authkey is
//                                        refused, a dict round trip, then
//                                        shuts the server down; exits 0 when
//                                        all held, 1 with the reason otherwise
#include <cstdio>
#include <string>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;
namespace managers = multiprocessing::managers;
using mp::Object;

namespace {

int serve(const mp::connection::Address& address, const mp::Bytes& authkey) {
  managers::SyncManager manager(address, authkey);
  try {
    manager.get_server().serve_forever();
  } catch (const mp::SystemExit&) {
    return 0;  // a client's 'shutdown'
  }
}

int fail(const std::string& why) {
  std::fprintf(stderr, "netns_manager client: %s\n", why.c_str());
  return 1;
}

int client(const mp::connection::Address& address, const mp::Bytes& authkey) {
  managers::SyncManager manager(address, authkey);
  double deadline = mp::os::monotonic() + 30.0;
  while (true) {
    try {
      manager.connect();
      break;
    } catch (const mp::OSError& e) {
      // Not listening yet (ECONNREFUSED), or the link still coming up.
      if (mp::os::monotonic() > deadline) return fail(std::string("no server: ") + e.what());
      mp::os::sleep(0.05);
    }
  }
  managers::SyncManager wrong(address, mp::Bytes("not the key"));
  try {
    wrong.connect();
    return fail("a wrong authkey was accepted");
  } catch (const mp::AuthenticationError&) {
    std::printf("wrong authkey refused\n");
  }
  {
    managers::DictProxy d = manager.dict(Object::Dict{{"a", std::int64_t{1}}});
    d.setitem("from", "the other namespace");
    if (d.getitem("a") != Object(std::int64_t{1})) return fail("d['a'] is " + d.getitem("a").repr());
    Object::Dict expected{{"a", std::int64_t{1}}, {"from", "the other namespace"}};
    if (d.copy() != expected) return fail("the dict is " + Object(d.copy()).repr());
    std::printf("dict round trip: %s\n", d.str().c_str());
  }
  if (manager._number_of_objects() != 0) return fail("the dict was not released");
  auto conn = mp::connection::Client(address, std::nullopt, authkey);
  managers::dispatch(conn, Object(), "shutdown");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mp::freeze_support();
  if (argc != 4) {
    std::fprintf(stderr, "usage: netns_manager serve|client HOST:PORT KEY\n");
    return 2;
  }
  std::string mode = argv[1];
  mp::connection::Address address = mp::connection::parse_address(argv[2]);
  mp::Bytes authkey(argv[3]);
  try {
    if (mode == "serve") return serve(address, authkey);
    if (mode == "client") return client(address, authkey);
  } catch (const std::exception& e) {
    return fail(mp::exception_type_name(e) + ": " + e.what());
  }
  std::fprintf(stderr, "netns_manager: unknown mode '%s'\n", mode.c_str());
  return 2;
}
