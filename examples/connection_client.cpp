// examples/connection_client.cpp — the Client half of the Python docs'
// "Listeners and Clients" example, in C++; see connection_listener.cpp.
//
//   connection_client [--address HOST:PORT | --address PATH] [--authkey KEY]
//
// Python:
//   with Client(address, authkey=b'secret password') as conn:
//       print(conn.recv())                  # => [2.25, None, 'junk']
//       print(conn.recv_bytes())            # => b'hello'
//       arr = array('i', [0, 0, 0, 0, 0])
//       print(conn.recv_bytes_into(arr))    # => 8
//       print(arr)                          # => array('i', [42, 1729, 0, 0, 0])
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include "multiprocessing/connection.hpp"

namespace mp = multiprocessing;

int main(int argc, char** argv) {
  std::string address_text = "localhost:6000";
  std::string authkey = "secret password";
  for (int a = 1; a + 1 < argc; a += 2) {
    if (std::strcmp(argv[a], "--address") == 0) address_text = argv[a + 1];
    if (std::strcmp(argv[a], "--authkey") == 0) authkey = argv[a + 1];
  }
  mp::connection::Connection conn = mp::connection::Client(
      mp::connection::parse_address(address_text), std::nullopt, mp::Bytes(authkey));

  std::printf("%s\n", conn.recv().repr().c_str());                            // [2.25, None, 'junk']
  std::printf("%s\n", mp::Object(mp::Bytes(conn.recv_bytes())).repr().c_str());  // b'hello'

  std::int32_t arr[5] = {0, 0, 0, 0, 0};
  std::size_t n = conn.recv_bytes_into(std::as_writable_bytes(std::span(arr)));
  std::printf("%zu\n", n);                                                    // 8
  std::printf("array('i', [%d, %d, %d, %d, %d])\n", arr[0], arr[1], arr[2], arr[3], arr[4]);
  return 0;
}
