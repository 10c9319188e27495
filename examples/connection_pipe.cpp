// examples/connection_pipe.cpp — seed lesson 002 (os_pipe.cpp) rewritten with
// multiprocessing's Pipe() and Process: the same three conversations, but in
// messages instead of raw bytes, and with the fd bookkeeping done by the library.
//
//   1. parent and child:  the child sends, the parent receives.
//   2. two siblings:      one child sends, the other receives; the parent keeps
//                         neither end (Python: closes both after start()).
//   3. one pipe per child, for three children.
// Python:
//   r, w = Pipe(duplex=False)
//   p = Process(target=lambda: w.send_bytes(b'Hello, pipe!')); p.start()
//   w.close()                     # the parent only reads
//   print('Received:', r.recv_bytes().decode()); p.join()
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "multiprocessing.hpp"

namespace mp = multiprocessing;
using mp::Pipe;  // Python: from multiprocessing import Pipe

namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);  // flush before a child is started, or it inherits the buffer
}

void parent_and_child() {
  say("== 1. parent and child ==");
  auto [reader, writer] = Pipe(/*duplex=*/false);
  mp::Process p({.target = [&writer = writer] { writer.send_bytes("Hello, pipe!"); }});
  p.start();
  writer.close();  // the parent only reads; and now EOF can come
  say("Received: " + reader.recv_bytes());
  p.join();
}

void two_siblings() {
  say("== 2. two siblings ==");
  auto [reader, writer] = Pipe(false);
  mp::Process sender({.target = [&writer = writer] { writer.send_bytes("Hello from child!"); }});
  mp::Process receiver({.target = [&reader = reader] { say("Received: " + reader.recv_bytes()); }});
  sender.start();
  receiver.start();
  // The parent uses neither end.
  reader.close();
  writer.close();
  sender.join();
  receiver.join();
}

void one_pipe_per_child() {
  say("== 3. one pipe per child ==");
  std::vector<std::unique_ptr<mp::Process>> children;
  for (int i = 0; i < 3; ++i) {
    auto [reader, writer] = Pipe(false);
    auto p = std::make_unique<mp::Process>(mp::ProcessOptions{.target = [&writer = writer] {
      writer.send_bytes("Hello, pipe write_end: " + std::to_string(writer.fileno()) + "!");
    }});
    p->start();
    writer.close();
    say("Received: " + reader.recv_bytes());
    children.push_back(std::move(p));
  }
  for (auto& p : children) p->join();
}

}  // namespace

int main() {
  parent_and_child();
  two_siblings();
  one_pipe_per_child();
  return 0;
}
