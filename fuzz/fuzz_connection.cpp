// fuzz/fuzz_connection.cpp
// libFuzzer target: a connection's framing (multiprocessing/connection.cpp)
// and the authentication handshake, with arbitrary bytes as what the peer
// sends.  The input's first byte picks what the near end does; the rest is
// written, as it is, into the far end of a socketpair, whose writing side is
// then shut down, so every read ends at the input's end (EOF), never blocks.
//   0  recv_bytes() until it throws         4  deliver_challenge, 3.11's (HMAC-MD5)
//   1  recv_bytes(256) until it throws      5  deliver_challenge, "sha256" (3.12's)
//   2  recv_bytes_into(64 bytes) until ...  6  answer_challenge
//   3  recv() (unpickle) until it throws    7  a Client's handshake: answer_challenge,
//                                              then deliver_challenge, with a deadline
// What it checks, per input: every call ends in a Python-named exception
// (EOFError, OSError, AuthenticationError, BufferTooShort, UnpicklingError...)
// or returns; nothing else escapes, nothing crashes or hangs; and the heap
// used at once stays within 4 MiB + 8 bytes per input byte (a header that
// announces 2 GiB costs the reader 1 MiB, then the buffer doubles only as
// bytes arrive).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "fuzz/support.hpp"
#include "multiprocessing/connection.hpp"
#include "multiprocessing/os.hpp"

namespace mp = multiprocessing;
namespace connection = multiprocessing::connection;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::HeapPeak::install();
  return 0;
}

namespace {

const mp::Bytes kAuthkey{"fuzz authkey"};

void run(int mode, connection::Connection& near) {
  switch (mode) {
    case 0:
      for (;;) near.recv_bytes();
    case 1:
      for (;;) near.recv_bytes(connection::HANDSHAKE_MAXLENGTH);
    case 2:
      for (;;) {
        std::byte buffer[64];
        near.recv_bytes_into(std::span<std::byte>(buffer), 8);
      }
    case 3:
      for (;;) near.recv();
    case 4:
      connection::deliver_challenge(near, kAuthkey);
      return;
    case 5:
      connection::deliver_challenge(near, kAuthkey, "sha256");
      return;
    case 6:
      connection::answer_challenge(near, kAuthkey);
      return;
    default: {
      double deadline = mp::os::monotonic() + 10.0;
      connection::answer_challenge(near, kAuthkey, deadline);
      connection::deliver_challenge(near, kAuthkey, "", deadline);
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  int mode = data[0] % 8;
  fuzz::HeapPeak::start();
  {
    auto [near, far] = connection::Pipe(true);
    fuzz::send_all_then_eof(far.fileno(), std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    try {
      run(mode, near);
    } catch (const mp::Exception&) {
      // A Python-named exception: the clean end this target expects.
    }
  }
  fuzz::HeapPeak::check("fuzz_connection", size, 4 << 20, 8);
  return 0;
}
