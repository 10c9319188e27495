// examples/connection_listener.cpp — the Listener half of the Python docs'
// "Listeners and Clients" example (multiprocessing.rst), in C++.  Either half can
// be swapped for the Python original (connection_listener.py / connection_client.py
// beside this file): the bytes on the wire are CPython's.
//
//   connection_listener [--address HOST:PORT | --address PATH] [--authkey KEY]
//   (defaults: localhost:6000, "secret password", as in the Python docs)
//
// Python:
//   with Listener(address, authkey=b'secret password') as listener:
//       with listener.accept() as conn:
//           print('connection accepted from', listener.last_accepted)
//           conn.send([2.25, None, 'junk'])
//           conn.send_bytes(b'hello')
//           conn.send_bytes(array('i', [42, 1729]))
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "multiprocessing/connection.hpp"

namespace mp = multiprocessing;
using mp::connection::Listener;

int main(int argc, char** argv) {
  std::string address_text = "localhost:6000";
  std::string authkey = "secret password";
  for (int a = 1; a + 1 < argc; a += 2) {
    if (std::strcmp(argv[a], "--address") == 0) address_text = argv[a + 1];
    if (std::strcmp(argv[a], "--authkey") == 0) authkey = argv[a + 1];
  }
  // "HOST:PORT" is AF_INET, anything else an AF_UNIX path: the family is
  // deduced from the address, as in Python.
  mp::connection::Address address = mp::connection::parse_address(address_text);

  Listener listener(address, std::nullopt, 1, mp::Bytes(authkey));
  mp::connection::Connection conn = listener.accept();
  // print() shows a str as it is (an unnamed unix peer: ''), a tuple as its repr.
  const mp::connection::Address& peer = *listener.last_accepted();
  const auto* path = std::get_if<std::string>(&peer);
  std::printf("connection accepted from %s\n",
              path != nullptr ? path->c_str() : mp::connection::address_repr(peer).c_str());

  conn.send(mp::Object::List{2.25, mp::None{}, "junk"});
  conn.send_bytes("hello");
  // The bytes of array('i', [42, 1729]): two native ints, as Python sends them.
  std::vector<std::int32_t> arr = {42, 1729};
  conn.send_bytes(std::string_view(reinterpret_cast<const char*>(arr.data()),
                                   arr.size() * sizeof(std::int32_t)));
  conn.close();
  listener.close();
  return 0;
}
