// examples/manager_options.hpp — the command line shared by the manager
// servers and clients of examples/: --address HOST:PORT (or a unix socket
// PATH) and --authkey KEY, with the Python docs' defaults, and any flag
// without a value (such as a client's --get).
#pragma once

#include <cstring>
#include <set>
#include <string>

#include "multiprocessing.hpp"

struct ManagerOptions {
  multiprocessing::connection::Address address;
  multiprocessing::Bytes authkey;
  std::set<std::string> flags;  ///< the arguments given without a value
};

/// Read --address and --authkey (each followed by its value) and bare flags.
/// \throws ValueError for an address parse_address cannot read.
inline ManagerOptions parse_manager_options(int argc, char** argv) {
  std::string address = "localhost:50000";
  std::string authkey = "abracadabra";
  std::set<std::string> flags;
  for (int a = 1; a < argc; ++a) {
    bool has_value = a + 1 < argc;
    if (has_value && std::strcmp(argv[a], "--address") == 0) {
      address = argv[++a];
    } else if (has_value && std::strcmp(argv[a], "--authkey") == 0) {
      authkey = argv[++a];
    } else {
      flags.insert(argv[a]);
    }
  }
  return {multiprocessing::connection::parse_address(address), multiprocessing::Bytes(authkey),
          flags};
}
