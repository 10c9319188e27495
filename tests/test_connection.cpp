// tests/test_connection.cpp — ports CPython's _TestConnection, _TestListener,
// _TestListenerClient, _TestPoll, _TestPicklingConnections, TestWait,
// TestIgnoreEINTR, TestCloseFds and TestInvalidHandle
// (Lib/test/_test_multiprocessing.py), the OtherTest handshake cases, and this
// port's own: the frame header, the
// handshake in both CPython versions, and a Listener that survives bad clients.
// Across processes with multiprocessing::Process, once per start method.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <thread>
#include <random>

#include "support.hpp"

namespace mp_test {

namespace conn = mp::connection;
using conn::Connection;

/// The children's targets: plain functions registered by name, so that they
/// reach children started by spawn and forkserver as well as forked ones.
/// Addresses cross as Objects: a string (AF_UNIX) or a (host, port) tuple.
namespace connection_tests {

const std::string SENTINEL = "";  // Python's tests use latin('') as the end marker

/// Python: TestIgnoreEINTR.CONN_MAX_SIZE = max(PIPE_MAX_SIZE, SOCK_MAX_SIZE):
/// more than a pipe or a socket buffer holds, so that sending it must block.
constexpr std::size_t CONN_MAX_SIZE = 16 * 1024 * 1024 + 1;

/// An address as a Process argument.
mp::Object address_object(const conn::Address& address) {
  if (const auto* path = std::get_if<std::string>(&address)) return mp::Object(*path);
  return mp::Object(std::get<conn::InetAddress>(address));
}

/// The address back in the child.
conn::Address address_from(const mp::Object& o) {
  if (const auto* path = std::get_if<std::string>(&o.variant())) return *path;
  return o.as<conn::InetAddress>();
}

/// Python: _TestConnection._echo.
void echo(Connection& c) {
  for (std::string msg; (msg = c.recv_bytes()) != SENTINEL;) c.send_bytes(msg);
  c.close();
}

/// Python: _echo, but for values, until "quit".
void echo_values(Connection& c) {
  for (;;) {
    mp::Object o = c.recv();
    if (o == mp::Object("quit")) break;
    c.send(o);
  }
}

/// A few MiB of a known pattern, which parent and child both make.
std::string big_message() {
  std::string big(5 * 1024 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  return big;
}

/// Send the big message whole and in the one-write and gathered-write sizes.
void send_big(Connection& w) {
  std::string big = big_message();
  w.send_bytes(big);
  w.send_bytes(big, 0, 16384);
  w.send_bytes(big, 1, 16385);
}

/// Connect, send "hello" (pickled), close.
void client_send_hello(mp::Object address) {
  Connection c = conn::Client(address_from(address));
  c.send("hello");
  c.close();
}

/// Connect, send the bytes "hello", close (Python: test_issue14725's _test).
void client_send_hello_bytes(mp::Object address) {
  conn::Client(address_from(address)).send_bytes("hello");
}

/// Connect with the right key, then with a wrong one; report both.
void client_with_authkey(mp::Object address, mp::Bytes key) {
  Connection c = conn::Client(address_from(address), std::nullopt, key);
  c.send_bytes("authenticated");
  try {
    conn::Client(address_from(address), std::nullopt, mp::Bytes("wrong"));
  } catch (const mp::AuthenticationError& e) {
    if (std::string(e.what()) == "digest sent was rejected") c.send_bytes("rejected");
  }
}

/// A good client after the bad ones.
void good_client(mp::Object address, mp::Bytes key) {
  conn::Client(address_from(address), std::nullopt, key).send_bytes("good");
}

/// The strings of _TestPoll.test_strings.
const std::vector<std::string> POLL_STRINGS = {"hello", "", "a", "b", "", "bye", "", "lop"};

/// Python: _TestPoll._child_strings.
void send_strings(Connection& b) {
  for (const std::string& s : POLL_STRINGS) {
    mp::os::sleep(0.02);
    b.send_bytes(s);
  }
  b.close();
}

/// Python: _TestPoll._child_boundaries.
void poll_five(Connection& r) { r.poll(5); }

/// Python: _TestPoll._child_dont_merge.
void send_a_b_cd(Connection& b) {
  b.send_bytes("a");
  b.send_bytes("b");
  b.send_bytes("cd");
}

/// Block until told to go.
void wait_for_go(Connection& go) { go.recv_bytes(); }

/// Python: TestWait._child_test_wait: ten (i, pid) messages, with random
/// pauses of up to 100 ms when `slow`.
void child_test_wait(Connection& w, bool slow) {
  std::mt19937 random(static_cast<unsigned>(::getpid()));
  for (std::int64_t i = 0; i < 10; ++i) {
    if (slow) mp::os::sleep(std::uniform_real_distribution<double>(0.0, 0.1)(random));
    w.send(mp::Object::Tuple{{i, std::int64_t{::getpid()}}});
  }
  w.close();
}

/// Python: TestWait._child_test_wait_socket: connect a plain socket and write
/// "0\n" ... "9\n" on it, with random pauses when `slow`.
void child_test_wait_socket(mp::Object address, bool slow) {
  Connection c = conn::Client(address_from(address));
  std::mt19937 random(static_cast<unsigned>(::getpid()));
  for (int i = 0; i < 10; ++i) {
    if (slow) mp::os::sleep(std::uniform_real_distribution<double>(0.0, 0.1)(random));
    std::string line = std::to_string(i) + "\n";
    ASSERT_EQ(::send(c.fileno(), line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  }
}

/// Python: TestWait.signal_and_sleep.
void signal_and_sleep(mp::synchronize::Semaphore& sem, double period) {
  sem.release();
  mp::os::sleep(period);
}

/// Python: _TestConnection._writefd: receive an fd and write `data` to it;
/// with `create_dummy_fds`, first fill every free fd below 256, so that the
/// one received lands above 256 (issue #11657).
void writefd(Connection& c, mp::Bytes data, bool create_dummy_fds) {
  if (create_dummy_fds) {
    for (int i = 0; i < 256; ++i) {
      if (::fcntl(i, F_GETFD) == -1 && errno == EBADF) ::dup2(c.fileno(), i);
    }
  }
  mp::os::Fd fd(mp::reduction::recv_handle(c.fileno()));
  mp::os::write(fd.get(), data.data);
}

/// Python: _TestConnection._send_data_without_fd.
void send_data_without_fd(Connection& c) { mp::os::write(c.fileno(), std::string(1, '\0')); }

/// Python: TestIgnoreEINTR._test_ignore: with a SIGUSR1 handler installed,
/// echo a value, then send more bytes than a pipe or socket holds.
void ignore_eintr(Connection& c) {
  ::signal(SIGUSR1, [](int) {});
  c.send("ready");
  c.send(c.recv());
  c.send_bytes(std::string(CONN_MAX_SIZE, 'x'));
}

/// Python: TestIgnoreEINTR._test_ignore_listener.
void ignore_eintr_listener(Connection& c) {
  ::signal(SIGUSR1, [](int) {});
  conn::Listener l;
  c.send(address_object(l.address()));
  Connection a = l.accept();
  a.send("welcome");
}

/// Python: TestCloseFds._test_closefds: is `fd` an open socket here?  Sends
/// None if so, else the errno of the failure.
void closefds(Connection& c, int fd) {
  int type = 0;
  socklen_t size = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0) {
    c.send(mp::Object());
  } else {
    c.send(std::int64_t{errno});
  }
}

/// Python: _TestPicklingConnections._listener: for each family, accept one
/// connection and send it (the Connection itself) to the test; then the
/// same through a plain AF_INET socket.
void pickling_listener(Connection& c) {
  for (const std::string& family : conn::families) {
    conn::Listener l(std::nullopt, family);
    c.send(address_object(l.address()));
    Connection new_conn = l.accept();
    c.send(mp::Object(new_conn));
  }
  conn::Listener l(std::nullopt, std::string("AF_INET"));
  c.send(address_object(l.address()));
  Connection new_conn = l.accept();
  c.send(mp::Object(new_conn));
  c.recv();
}

/// Python: _TestPicklingConnections._remote: connect to each address given
/// and send the message in upper case; the last one as raw bytes on a plain socket.
void pickling_remote(Connection& c) {
  auto upper = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
  };
  for (mp::Object o; !(o = c.recv()).is_none();) {
    auto [address, msg] = o.as<std::pair<mp::Object, mp::Bytes>>();
    conn::Client(address_from(address)).send(mp::Bytes(upper(msg.data)));
  }
  auto [address, msg] = c.recv().as<std::pair<mp::Object, mp::Bytes>>();
  Connection client = conn::Client(address_from(address));
  mp::os::write(client.fileno(), upper(msg.data));
}

}  // namespace connection_tests

MP_REGISTER_TARGET(connection_tests::echo);
MP_REGISTER_TARGET(connection_tests::echo_values);
MP_REGISTER_TARGET(connection_tests::send_big);
MP_REGISTER_TARGET(connection_tests::client_send_hello);
MP_REGISTER_TARGET(connection_tests::client_send_hello_bytes);
MP_REGISTER_TARGET(connection_tests::client_with_authkey);
MP_REGISTER_TARGET(connection_tests::good_client);
MP_REGISTER_TARGET(connection_tests::send_strings);
MP_REGISTER_TARGET(connection_tests::poll_five);
MP_REGISTER_TARGET(connection_tests::send_a_b_cd);
MP_REGISTER_TARGET(connection_tests::wait_for_go);
MP_REGISTER_TARGET(connection_tests::child_test_wait);
MP_REGISTER_TARGET(connection_tests::child_test_wait_socket);
MP_REGISTER_TARGET(connection_tests::signal_and_sleep);
MP_REGISTER_TARGET(connection_tests::writefd);
MP_REGISTER_TARGET(connection_tests::send_data_without_fd);
MP_REGISTER_TARGET(connection_tests::ignore_eintr);
MP_REGISTER_TARGET(connection_tests::ignore_eintr_listener);
MP_REGISTER_TARGET(connection_tests::closefds);
MP_REGISTER_TARGET(connection_tests::pickling_listener);
MP_REGISTER_TARGET(connection_tests::pickling_remote);

namespace {

using connection_tests::address_object;
using connection_tests::SENTINEL;

class TestConnection : public WithStartMethod {};
class TestListenerClient : public WithStartMethod {};
class TestPoll : public WithStartMethod {};
class TestBadClients : public WithStartMethod {};
class TestPicklingConnections : public WithStartMethod {};
// CPython's unittest.TestCase classes that each start-method module runs again.
class TestWait : public WithStartMethod {};
class TestIgnoreEINTR : public WithStartMethod {};
class TestCloseFds : public WithStartMethod {};

/// The bytes of an int array (Python: array.array('i', values)).
std::string int_bytes(const std::vector<std::int32_t>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

/// What a raw client writes: connect to `address` and write `data`.
mp::os::Fd raw_client(const conn::Address& address) {
  Connection c = conn::Client(address);
  return mp::os::Fd(::dup(c.fileno()));
}

// ---------------------------------------------------------------- framing

/// Reference §3.1: the header in both forms, without allocating 2 GiB.
TEST(TestFraming, Headers) {
  EXPECT_EQ(conn::_frame_header(0), std::string("\0\0\0\0", 4));
  EXPECT_EQ(conn::_frame_header(0x13), std::string("\0\0\0\x13", 4));
  EXPECT_EQ(conn::_frame_header(0x7fffffff), std::string("\x7f\xff\xff\xff", 4));
  EXPECT_EQ(conn::_frame_header(0x80000000ull),
            std::string("\xff\xff\xff\xff\0\0\0\0\x80\0\0\0", 12));
  EXPECT_EQ(conn::_frame_header(0x123456789abull),
            std::string("\xff\xff\xff\xff\0\0\x01\x23\x45\x67\x89\xab", 12));
  EXPECT_EQ(conn::_frame_short_length(std::string("\0\0\0\x13", 4)), 0x13u);
  EXPECT_EQ(conn::_frame_short_length(std::string("\x7f\xff\xff\xff", 4)), 0x7fffffffu);
  EXPECT_EQ(conn::_frame_short_length("\xff\xff\xff\xff"), std::nullopt);
  EXPECT_EQ(conn::_frame_long_length(std::string("\0\0\x01\x23\x45\x67\x89\xab", 8)),
            0x123456789abull);
  // Other negative lengths: CPython loses the stream; the port refuses them.
  EXPECT_THROW(conn::_frame_short_length("\xff\xff\xff\xfe"), mp::OSError);
  EXPECT_THROW(conn::_frame_short_length(std::string("\x80\0\0\0", 4)), mp::OSError);
  EXPECT_THROW(conn::_frame_long_length("\x80\0\0\0\0\0\0\0"), mp::OSError);
}

/// Reference §3.1: the 8-byte form is read for any size ("ff ff ff ff 00..05
/// hello" is b'hello'), and send_bytes writes the 4-byte form byte for byte.
TEST(TestFraming, OnTheWire) {
  auto [a, b] = conn::Pipe();
  std::string long_form("\xff\xff\xff\xff\0\0\0\0\0\0\0\x05hello", 17);
  ASSERT_EQ(::write(b.fileno(), long_form.data(), long_form.size()), 17);
  EXPECT_EQ(a.recv_bytes(), "hello");
  b.send_bytes("ping");
  EXPECT_EQ(mp::os::read(a.fileno(), 100), std::string("\0\0\0\x04ping", 8));
  b.send_bytes("");
  EXPECT_EQ(mp::os::read(a.fileno(), 100), std::string("\0\0\0\0", 4));
}

// ---------------------------------------------------------------- _TestConnection

/// _TestConnection.test_connection (the bytes half; SendRecvValues has the rest).
TEST_P(TestConnection, Connection) {
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = connection_tests::echo, .args = {child_conn}, .daemon = true});
  p.start();

  EXPECT_GE(c.fileno(), 0);
  std::string msg = "hello world";
  std::string longmsg;
  for (int i = 0; i < 10; ++i) longmsg += msg;
  std::vector<std::int32_t> arr = {0, 1, 2, 3};

  c.send_bytes(msg);
  EXPECT_EQ(c.recv_bytes(), msg);

  // recv_bytes_into an int buffer, at offset 0 and at 3 ints.
  std::vector<std::int32_t> buffer(10, 0);
  c.send_bytes(int_bytes(arr));
  EXPECT_EQ(c.recv_bytes_into(std::as_writable_bytes(std::span(buffer))), 16u);
  EXPECT_EQ(buffer, (std::vector<std::int32_t>{0, 1, 2, 3, 0, 0, 0, 0, 0, 0}));
  buffer.assign(10, 0);
  c.send_bytes(int_bytes(arr));
  EXPECT_EQ(c.recv_bytes_into(std::as_writable_bytes(std::span(buffer)), 3 * 4), 16u);
  EXPECT_EQ(buffer, (std::vector<std::int32_t>{0, 0, 0, 0, 1, 2, 3, 0, 0, 0}));

  // BufferTooShort carries the whole message, which is consumed.
  std::string small(40, ' ');
  c.send_bytes(longmsg);
  try {
    c.recv_bytes_into(small);
    ADD_FAILURE() << "expected BufferTooShort";
  } catch (const mp::BufferTooShort& e) {
    EXPECT_EQ(e.message(), longmsg);
  }

  // Timings as support.hpp's IGNORED_TIMEOUT says: waits checked from
  // below, "at once" as well under a third of a long timeout.
  double t0 = mp::os::monotonic();
  EXPECT_FALSE(c.poll());
  EXPECT_FALSE(c.poll(-1));
  EXPECT_LT(mp::os::monotonic() - t0, IGNORED_TIMEOUT / 3);
  t0 = mp::os::monotonic();
  EXPECT_FALSE(c.poll(0.1));
  EXPECT_GE(mp::os::monotonic() - t0, 0.1);

  c.send_bytes("x");
  mp::os::sleep(0.1);
  t0 = mp::os::monotonic();
  EXPECT_TRUE(c.poll(IGNORED_TIMEOUT));  // the byte is there: no wait
  EXPECT_LT(mp::os::monotonic() - t0, IGNORED_TIMEOUT / 3);
  EXPECT_EQ(c.recv_bytes(), "x");

  std::string really_big_msg(16 * 1024 * 1024, 'X');  // 16 MiB, as Python's
  c.send_bytes(really_big_msg);
  EXPECT_EQ(c.recv_bytes(), really_big_msg);

  c.send_bytes(SENTINEL);  // tell child to quit
  child_conn.close();
  EXPECT_TRUE(c.readable());
  EXPECT_TRUE(c.writable());
  EXPECT_THROW(c.recv_bytes(), mp::EOFError);
  join_process(p);
}

/// _TestConnection.test_duplex_false
TEST(TestConnectionOnce, DuplexFalse) {
  auto [reader, writer] = conn::Pipe(/*duplex=*/false);
  writer.send_bytes("1");
  EXPECT_EQ(reader.recv_bytes(), "1");
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_FALSE(writer.readable());
  EXPECT_TRUE(writer.writable());
  try {
    reader.send_bytes("2");
    ADD_FAILURE();
  } catch (const mp::OSError& e) {
    EXPECT_STREQ(e.what(), "connection is read-only");
  }
  try {
    writer.recv_bytes();
    ADD_FAILURE();
  } catch (const mp::OSError& e) {
    EXPECT_STREQ(e.what(), "connection is write-only");
  }
  EXPECT_THROW(writer.poll(), mp::OSError);
}

/// _TestConnection.test_spawn_close
TEST_P(TestConnection, SpawnClose) {
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = connection_tests::echo, .args = {child_conn}, .daemon = true});
  p.start();
  child_conn.close();  // this might complete before child initializes
  c.send_bytes("hello");
  EXPECT_EQ(c.recv_bytes(), "hello");
  c.send_bytes(SENTINEL);
  c.close();
  join_process(p);
}

/// _TestConnection.test_sendbytes
TEST(TestConnectionOnce, Sendbytes) {
  std::string msg = "abcdefghijklmnopqrstuvwxyz";
  auto [a, b] = conn::Pipe();
  a.send_bytes(msg);
  EXPECT_EQ(b.recv_bytes(), msg);
  a.send_bytes(msg, 5);
  EXPECT_EQ(b.recv_bytes(), msg.substr(5));
  a.send_bytes(msg, 7, 8);
  EXPECT_EQ(b.recv_bytes(), msg.substr(7, 8));
  a.send_bytes(msg, 26);
  EXPECT_EQ(b.recv_bytes(), "");
  a.send_bytes(msg, 26, 0);
  EXPECT_EQ(b.recv_bytes(), "");
  auto expect_value_error = [&a = a, &msg](std::size_t offset, std::optional<std::size_t> size,
                                const char* text) {
    try {
      a.send_bytes(msg, offset, size);
      ADD_FAILURE() << text;
    } catch (const mp::ValueError& e) {
      EXPECT_STREQ(e.what(), text);
    }
  };
  expect_value_error(27, std::nullopt, "buffer length < offset");
  expect_value_error(22, 5, "buffer length < offset + size");
  expect_value_error(26, 1, "buffer length < offset + size");
  // Negative offsets and sizes cannot be written with size_t arguments.
  EXPECT_FALSE(b.poll());  // nothing was sent by the failed calls
}

/// send() and recv() reuse a buffer per thread (port only): a send nested in
/// another, from a __reduce__ hook run while the outer object is pickled, gets
/// its own buffer, so both messages arrive whole; a message of 1 MiB (a buffer
/// that is not kept) between small ones changes nothing; a pickling error
/// sends nothing and leaves the next send whole.
TEST(TestConnectionOnce, SendRecvReusedBuffers) {
  using mp::Object;
  auto [a, b] = conn::Pipe();
  auto [c, d] = conn::Pipe();
  Object::Reduced hooked{{"builtins", "list"}, {}};
  hooked.reduce = [&c = c]() -> Object {
    c.send(Object::List{"inner", std::int64_t{1}});
    return Object(Object::List{std::int64_t{2}, std::int64_t{3}});
  };
  a.send(Object::Tuple{{"outer", Object(hooked)}});
  EXPECT_EQ(d.recv(), Object(Object::List{"inner", std::int64_t{1}}));
  EXPECT_EQ(b.recv(), Object(Object::Tuple{{"outer", Object::List{std::int64_t{2}, std::int64_t{3}}}}));
  std::string big(1 << 20, 'z');
  std::thread sender([&a = a, &big] {  // 1 MiB does not fit in the socket's buffer: read meanwhile
    a.send("small");
    a.send(mp::Bytes(big));
    a.send("small again");
  });
  EXPECT_EQ(b.recv(), Object("small"));
  EXPECT_EQ(b.recv(), Object(mp::Bytes(big)));
  EXPECT_EQ(b.recv(), Object("small again"));
  sender.join();
  Object::List deep;
  Object* inner = nullptr;
  deep.push_back(Object::List{});
  inner = &deep.back();
  for (int i = 0; i < mp::reduction::kMaxDepth + 5; ++i) {
    auto* list = std::get_if<Object::List>(&inner->variant());
    list->push_back(Object::List{});
    inner = &list->back();
  }
  EXPECT_THROW(a.send(Object(deep)), mp::PicklingError);
  a.send("after the error");
  EXPECT_EQ(b.recv(), Object("after the error"));
  EXPECT_FALSE(b.poll());
}

/// _TestConnection: errors on a closed connection; close() is idempotent./// _TestConnection: errors on a closed connection; close() is idempotent.
TEST(TestConnectionErrors, Closed) {
  auto [a, b] = conn::Pipe();
  a.close();
  a.close();
  EXPECT_TRUE(a.closed());
  for (auto call : {+[](Connection& c) { c.fileno(); }, +[](Connection& c) { c.send_bytes("x"); },
                    +[](Connection& c) { c.recv_bytes(); }, +[](Connection& c) { c.poll(); }}) {
    try {
      call(a);
      ADD_FAILURE();
    } catch (const mp::OSError& e) {
      EXPECT_STREQ(e.what(), "handle is closed");
    }
  }
  // The peer sees EOF between messages...
  EXPECT_THROW(b.recv_bytes(), mp::EOFError);
  EXPECT_THROW(Connection(mp::os::Fd(), true, true), mp::ValueError);
}

/// _TestConnection: EOF inside a message; "bad message length" keeps a duplex
/// connection writable and closes a simplex one.
TEST(TestConnectionErrors, TruncatedAndTooLong) {
  {
    auto [a, b] = conn::Pipe();
    std::string partial("\0\0\0\x0ahel", 7);
    ASSERT_EQ(::write(b.fileno(), partial.data(), partial.size()), 7);
    b.close();
    try {
      a.recv_bytes();
      ADD_FAILURE();
    } catch (const mp::OSError& e) {
      EXPECT_STREQ(e.what(), "got end of file during message");
    }
  }
  {
    auto [a, b] = conn::Pipe();
    b.send_bytes("0123456789");
    try {
      a.recv_bytes(5);
      ADD_FAILURE();
    } catch (const mp::OSError& e) {
      EXPECT_STREQ(e.what(), "bad message length");
    }
    EXPECT_FALSE(a.readable());
    EXPECT_TRUE(a.writable());
    a.send_bytes("still writable");
    EXPECT_EQ(b.recv_bytes(), "still writable");
  }
  {
    auto [r, w] = conn::Pipe(false);
    w.send_bytes("0123456789");
    EXPECT_THROW(r.recv_bytes(5), mp::OSError);
    EXPECT_TRUE(r.closed());
  }
  {
    auto [a, b] = conn::Pipe();
    b.send_bytes("abc");
    std::string buf(8, '\0');
    try {
      a.recv_bytes_into(buf, 9);
      ADD_FAILURE();
    } catch (const mp::ValueError& e) {
      EXPECT_STREQ(e.what(), "offset too large");
    }
    EXPECT_EQ(a.recv_bytes_into(buf, 5), 3u);
    EXPECT_EQ(buf.substr(5), "abc");
  }
}

/// A peer that announces 2 GiB and sends 10 bytes: EOF mid-message, with the
/// buffer grown only as far as the bytes that came (1 MiB), not to 2 GiB.
TEST(TestConnectionErrors, LyingLengthCostsLittle) {
  auto [a, b] = conn::Pipe();
  std::string lie = std::string("\x7f\xff\xff\xff", 4) + "0123456789";
  ASSERT_EQ(::write(b.fileno(), lie.data(), lie.size()), 14);
  b.close();
  try {
    a.recv_bytes();
    ADD_FAILURE();
  } catch (const mp::OSError& e) {
    EXPECT_STREQ(e.what(), "got end of file during message");
  }
}

/// Not in CPython: a message longer than the buffer's first 1 MiB and than
/// one read's reach, read with deadlines while it arrives in two parts (what
/// a Queue's get() with a timeout does): the read that runs out of time keeps
/// every byte of the first part, and the next one ends with the whole
/// message, byte for byte.
TEST(TestConnectionErrors, ResumedReadOfALargeMessage) {
  auto [a, b] = conn::Pipe();
  std::string payload = connection_tests::big_message();
  std::string framed = conn::_frame_header(payload.size()) + payload;
  const std::size_t first_part = 1536 * 1024 + 3;
  std::promise<void> first_written, go_on;
  std::thread writer([&, fd = b.fileno()] {
    // Blocking writes: each returns once the reader has made room.
    EXPECT_EQ(mp::os::write(fd, std::string_view(framed).substr(0, first_part)), first_part);
    first_written.set_value();
    go_on.get_future().wait();
    EXPECT_EQ(mp::os::write(fd, std::string_view(framed).substr(first_part)), framed.size() - first_part);
  });
  Connection::PartialMessage part;
  std::future<void> written = first_written.get_future();
  bool whole = false;
  // Short deadlines until the first part is in and a read has timed out after it.
  for (;;) {
    bool all_in = written.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    whole = a._recv_bytes_resume(part, mp::os::monotonic() + 0.05);
    if (whole || all_in) break;
  }
  EXPECT_FALSE(whole);
  EXPECT_TRUE(part.started());
  EXPECT_EQ(part.progress(), first_part);
  go_on.set_value();
  EXPECT_TRUE(a._recv_bytes_resume(part, mp::os::monotonic() + 60));
  writer.join();
  EXPECT_EQ(part.got, payload.size());
  EXPECT_TRUE(part.payload == payload);  // not EXPECT_EQ: 5 MiB in a failure message
}

/// Writing to a socket whose peer is gone is EPIPE, not a SIGPIPE death.
TEST(TestConnectionErrors, BrokenPipeIsAnError) {
  auto [a, b] = conn::Pipe();
  b.close();
  EXPECT_THROW(a.send_bytes(std::string(100000, 'x')), mp::OSError);
}

/// A message of a few MiB crosses a socketpair and an os pipe whole, in both
/// the one-write (<= 16384) and gathered-write paths.
TEST_P(TestConnection, LargeMessages) {
  for (bool duplex : {true, false}) {
    auto [r, w] = conn::Pipe(duplex);
    std::string big = connection_tests::big_message();
    mp::Process p({.target = connection_tests::send_big, .args = {w}});
    p.start();
    EXPECT_EQ(r.recv_bytes(), big);
    EXPECT_EQ(r.recv_bytes(), big.substr(0, 16384));
    EXPECT_EQ(r.recv_bytes(), big.substr(1, 16385));
    join_process(p);
  }
}

/// _TestConnection.test_connection, the value half: send/recv through pickle.
TEST_P(TestConnection, SendRecvValues) {
  auto [c, child_conn] = conn::Pipe();
  mp::Process p({.target = connection_tests::echo_values, .args = {child_conn}, .daemon = true});
  p.start();
  mp::Object seq = mp::Object::List{std::int64_t{1}, 2.25, mp::None{}};
  c.send(seq);
  EXPECT_EQ(c.recv(), seq);
  mp::Object dict = mp::Object::Dict{{mp::Object("a"), mp::Object(std::int64_t{1})},
                                     {mp::Object("b"), mp::Object(mp::Bytes("\x00\xff"))}};
  c.send(dict);
  EXPECT_EQ(c.recv(), dict);
  c.send(mp::None{});
  mp::os::sleep(0.1);
  EXPECT_TRUE(c.poll(0.1));
  EXPECT_TRUE(c.recv().is_none());
  c.send("quit");
  child_conn.close();
  EXPECT_THROW(c.recv(), mp::EOFError);
  join_process(p);
}

/// _TestConnection.test_duplex_false, the value half.
TEST(TestConnectionOnce, DuplexFalseValues) {
  auto [reader, writer] = conn::Pipe(false);
  writer.send(std::int64_t{1});
  EXPECT_EQ(reader.recv(), mp::Object(std::int64_t{1}));
  EXPECT_THROW(reader.send(std::int64_t{2}), mp::OSError);
  EXPECT_THROW(writer.recv(), mp::OSError);
}

/// Reference §3.1: c.send('ping') puts exactly CPython's bytes on the wire.
TEST(TestFraming, SendPingBytes) {
  auto [a, b] = conn::Pipe();
  b.send("ping");
  EXPECT_EQ(mp::os::read(a.fileno(), 100),
            std::string("\0\0\0\x13\x80\x04\x95\x08\0\0\0\0\0\0\0\x8c\x04ping\x94.", 23));
}

/// docs/wire_format.md: every byte string the page shows, so the page and the
/// code cannot drift apart.
TEST(TestWireFormat, DocExample) {
  // The page's "random" bytes: 00 01 02 ... (20 of them, and 40 for 3.12).
  std::string r40;
  for (char i = 0; i < 40; ++i) r40 += i;
  std::string r20 = r40.substr(0, 20);
  mp::Bytes key("secret");
  auto [server, client] = conn::Pipe();

  // The 3.11 round: challenge frame, the answer's frame, the welcome frame.
  server.send_bytes("#CHALLENGE#" + r20);
  EXPECT_EQ(mp::os::read(client.fileno(), 100),
            unhex("00 00 00 1f 23 43 48 41 4c 4c 45 4e 47 45 23") + r20);
  mp::os::write(server.fileno(), unhex("00 00 00 1f") + "#CHALLENGE#" + r20);  // again, for the answerer
  std::thread answerer([&client = client, &key] { conn::answer_challenge(client, key); });
  EXPECT_EQ(mp::os::read(server.fileno(), 100),
            unhex("00 00 00 10 7d ef a9 cc 46 ab c3 58 33 25 d1 7c cd a7 51 90"));
  server.send_bytes("#WELCOME#");
  answerer.join();
  server.send_bytes("#WELCOME#");
  EXPECT_EQ(mp::os::read(client.fileno(), 100), unhex("00 00 00 09 23 57 45 4c 43 4f 4d 45 23"));

  // The 3.12 round: 59-byte challenge, 40-byte answer.
  server.send_bytes("#CHALLENGE#{sha256}" + r40);
  std::string challenge312 = mp::os::read(client.fileno(), 100);
  EXPECT_EQ(challenge312, unhex("00 00 00 3b") + "#CHALLENGE#{sha256}" + r40);
  mp::os::write(server.fileno(), challenge312);  // again, for the answerer
  answerer = std::thread([&client = client, &key] { conn::answer_challenge(client, key); });
  EXPECT_EQ(mp::os::read(server.fileno(), 100),
            unhex("00 00 00 28") + "{sha256}" +
                unhex("fc 57 fb e6 50 d6 12 4b 98 21 5e 7b 5d 19 7d 58"
                      "07 ad 69 98 2d 27 5a 97 35 ea 2d 56 f1 fa 69 89"));
  server.send_bytes("#WELCOME#");
  answerer.join();

  // Layer 3: the benchmarks' dict, pickled and framed.
  server.send(mp::Object::Dict{{"a", 1}, {"b", mp::Object::List{1, 2, 3}}, {"c", "xyz"}});
  EXPECT_EQ(mp::os::read(client.fileno(), 100),
            unhex("00 00 00 2e 80 04 95 23 00 00 00 00 00 00 00 7d 94 28 8c 01 61 94 4b 01"
                  "8c 01 62 94 5d 94 28 4b 01 4b 02 4b 03 65 8c 01 63 94 8c 03 78 79 7a 94"
                  "75 2e"));
}

// ---------------------------------------------------------------- _TestListener

/// _TestListener.test_multiple_bind
TEST(TestListenerOnce, MultipleBind) {
  for (const std::string& family : conn::families) {
    conn::Listener l(std::nullopt, family);
    EXPECT_THROW(conn::Listener(l.address(), family), mp::OSError);
  }
}

/// _TestListener.test_context (bytes) and the unix socket file's life: made
/// in the private temp dir (0700), gone when the listener closes.
TEST(TestListenerOnce, Context) {
  std::string path;
  {
    conn::Listener l;
    path = std::get<std::string>(l.address());
    EXPECT_EQ(path.rfind(mp::util::get_temp_dir() + "/listener-", 0), 0u) << path;
    struct stat st{};
    ASSERT_EQ(::stat(mp::util::get_temp_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    Connection c = conn::Client(l.address());
    Connection d = l.accept();
    c.send(std::int64_t{1729});
    EXPECT_EQ(d.recv(), mp::Object(std::int64_t{1729}));
    l.close();
    EXPECT_THROW(l.accept(), mp::OSError);
    EXPECT_NE(::access(path.c_str(), F_OK), 0);  // unlinked by close()
  }
  {
    conn::Listener l;
    path = std::get<std::string>(l.address());
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // and by the destructor
}

/// _TestListener.test_abstract_socket
TEST(TestListenerOnce, AbstractSocket) {
  std::string name = std::string(1, '\0') + "something-" + std::to_string(::getpid());
  conn::Listener listener(name);
  EXPECT_EQ(listener.address(), conn::Address(name));
  EXPECT_EQ(conn::address_type(listener.address()), "AF_UNIX");
  Connection client = conn::Client(listener.address());
  Connection d = listener.accept();
  client.send(std::int64_t{1729});
  EXPECT_EQ(d.recv(), mp::Object(std::int64_t{1729}));
  listener.close();
  EXPECT_THROW(listener.accept(), mp::OSError);
}

/// TestInvalidFamily and the address helpers.
TEST(TestListenerAddresses, FamiliesAndTypes) {
  try {
    conn::Listener l(std::string("\\\\.\\test"));
    ADD_FAILURE();
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Family AF_PIPE is not recognized.");
  }
  EXPECT_THROW(conn::arbitrary_address("AF_BOGUS"), mp::ValueError);
  EXPECT_EQ(conn::arbitrary_address("AF_INET"), conn::Address(conn::InetAddress{"localhost", 0}));
  EXPECT_EQ(conn::address_type(conn::InetAddress{"127.0.0.1", 1}), "AF_INET");
  EXPECT_EQ(conn::address_type(std::string("/tmp/x")), "AF_UNIX");
  EXPECT_EQ(conn::parse_address("127.0.0.1:6000"), conn::Address(conn::InetAddress{"127.0.0.1", 6000}));
  EXPECT_EQ(conn::parse_address("/tmp/sock"), conn::Address(std::string("/tmp/sock")));
  EXPECT_EQ(conn::address_repr(conn::InetAddress{"127.0.0.1", 6000}), "('127.0.0.1', 6000)");
  // Python's repr of the str: a NUL (abstract namespace) and non-ASCII text.
  EXPECT_EQ(conn::address_repr(std::string("\0abstract", 9)), "'\\x00abstract'");
  EXPECT_EQ(conn::address_repr(std::string("/tmp/caf\xc3\xa9")), "'/tmp/caf\xc3\xa9'");
  EXPECT_THROW(conn::Client(std::string("/nonexistent/socket")), mp::FileNotFoundError);
}

// ---------------------------------------------------------------- _TestListenerClient

/// _TestListenerClient.test_listener_client (AF_INET only on 127.0.0.1)
TEST_P(TestListenerClient, ListenerClient) {
  for (const std::string& family : conn::families) {
    std::optional<conn::Address> where;
    if (family == "AF_INET") where = conn::InetAddress{"127.0.0.1", 0};
    conn::Listener l(where, family);
    conn::Address address = l.address();
    mp::Process p({.target = connection_tests::client_send_hello,
                   .args = {address_object(address)},
                   .daemon = true});
    p.start();
    Connection c = l.accept();
    EXPECT_EQ(c.recv(), mp::Object("hello"));
    if (family == "AF_INET") {
      EXPECT_EQ(std::get<conn::InetAddress>(*l.last_accepted()).first, "127.0.0.1");
    }
    join_process(p);
    l.close();
  }
}

/// _TestListenerClient.test_issue14725
TEST_P(TestListenerClient, Issue14725) {
  conn::Listener l;
  conn::Address address = l.address();
  mp::Process p({.target = connection_tests::client_send_hello_bytes,
                 .args = {address_object(address)},
                 .daemon = true});
  p.start();
  mp::os::sleep(0.3);  // the client has connected, written and closed by now
  Connection c = l.accept();
  EXPECT_EQ(c.recv_bytes(), "hello");
  join_process(p);
}

/// _TestListenerClient.test_issue16955
TEST(TestListenerClientOnce, Issue16955) {
  for (const std::string& family : conn::families) {
    conn::Listener l(std::nullopt, family);
    Connection c = conn::Client(l.address());
    Connection a = l.accept();
    a.send_bytes("hello");
    EXPECT_TRUE(c.poll(1));
  }
}

/// Both sides with an authkey (3.11 handshake by default), across processes,
/// and a wrong key: AuthenticationError on both sides.
TEST_P(TestListenerClient, Authkey) {
  mp::Bytes key("secret");
  conn::Listener l(std::nullopt, std::nullopt, 1, key);
  conn::Address address = l.address();
  mp::Process p({.target = connection_tests::client_with_authkey,
                 .args = {address_object(address), key}});
  p.start();
  Connection c = l.accept();
  EXPECT_EQ(c.recv_bytes(), "authenticated");
  try {
    l.accept();
    ADD_FAILURE();
  } catch (const mp::AuthenticationError& e) {
    EXPECT_STREQ(e.what(), "digest received was wrong");
  }
  EXPECT_EQ(c.recv_bytes(), "rejected");
  join_process(p);
}

// ---------------------------------------------------------------- handshakes

/// deliver_challenge/answer_challenge in every combination of challenge form
/// (3.11's MD5, 3.12's prefixed digests); a wrong key fails both ways.
TEST(TestHandshake, AllDigests) {
  mp::Bytes key("secret");
  for (std::string digest : {"", "md5", "sha256", "sha384", "sha3_256", "sha3_384"}) {
    auto [a, b] = conn::Pipe();
    // answer_challenge writes one message and reads one; a thread plays the peer.
    std::thread answerer([&b = b, &key] { conn::answer_challenge(b, key); });
    conn::deliver_challenge(a, key, digest);
    answerer.join();
  }
  auto [a, b] = conn::Pipe();
  std::exception_ptr answer_error;
  std::thread answerer([&b = b, &answer_error] {
    try {
      conn::answer_challenge(b, mp::Bytes("other"));
    } catch (...) {
      answer_error = std::current_exception();
    }
  });
  EXPECT_THROW(conn::deliver_challenge(a, key, "sha256"), mp::AuthenticationError);
  answerer.join();
  EXPECT_THROW(std::rethrow_exception(answer_error), mp::AuthenticationError);
}

/// OtherTest.test_deliver_challenge_auth_failure: the peer answers the
/// challenge with bytes that are no digest: AuthenticationError.
TEST(TestHandshake, DeliverChallengeAuthFailure) {
  auto [a, b] = conn::Pipe();
  std::thread peer([&b = b] {
    b.recv_bytes();  // the challenge
    b.send_bytes("something bogus");
    b.recv_bytes();  // #FAILURE#
  });
  EXPECT_THROW(conn::deliver_challenge(a, mp::Bytes("abc")), mp::AuthenticationError);
  peer.join();
}

/// OtherTest.test_answer_challenge_auth_failure: the peer sends a bare
/// #CHALLENGE#, then bytes that are not #WELCOME#: AuthenticationError.
/// (Like CPython 3.12, the port already refuses the empty challenge as too
/// short; 3.11 answers it and refuses the reply.)
TEST(TestHandshake, AnswerChallengeAuthFailure) {
  auto [a, b] = conn::Pipe();
  a.send_bytes("#CHALLENGE#");
  a.send_bytes("something bogus");
  EXPECT_THROW(conn::answer_challenge(b, mp::Bytes("abc")), mp::AuthenticationError);
}

/// Reference §3.2/3.3 and OtherTest: the challenge bytes, the responses a 3.11
/// and a 3.12 peer send, checked against known HMACs.
TEST(TestHandshake, WireForms) {
  // HMAC-MD5 of RFC 2202 test case 2, HMAC-SHA256 of RFC 4231 test case 2.
  auto hex = [](const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) out += {d[c >> 4], d[c & 15]};
    return out;
  };
  EXPECT_EQ(hex(conn::_hmac("md5", "Jefe", "what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738");
  EXPECT_EQ(hex(conn::_hmac("sha256", "Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_THROW(conn::_hmac("sha1", "k", "m"), mp::ValueError);

  mp::Bytes key("secret");
  {
    // 3.11 form: 31 bytes; the answer is the bare 16-byte MD5.
    auto [a, b] = conn::Pipe();
    std::thread server([&a = a, &key] { conn::deliver_challenge(a, key); });
    std::string challenge = b.recv_bytes();
    ASSERT_EQ(challenge.size(), 31u);
    EXPECT_EQ(challenge.substr(0, 11), "#CHALLENGE#");
    b.send_bytes(conn::_hmac("md5", "secret", challenge.substr(11)));
    EXPECT_EQ(b.recv_bytes(), "#WELCOME#");
    server.join();
  }
  {
    // 3.12 form: 59 bytes "#CHALLENGE#{sha256}" + 40; a 3.11 peer's bare MD5
    // over the prefixed message is accepted, as 3.12 accepts it.
    auto [a, b] = conn::Pipe();
    std::thread server([&a = a, &key] { conn::deliver_challenge(a, key, "sha256"); });
    std::string challenge = b.recv_bytes();
    ASSERT_EQ(challenge.size(), 59u);
    EXPECT_EQ(challenge.substr(0, 19), "#CHALLENGE#{sha256}");
    b.send_bytes(conn::_hmac("md5", "secret", challenge.substr(11)));
    EXPECT_EQ(b.recv_bytes(), "#WELCOME#");
    server.join();
  }
  {
    // The answering side: a 3.12 challenge gets "{sha256}" + 32 bytes.
    auto [a, b] = conn::Pipe();
    std::string message = "{sha256}" + std::string(40, 'r');
    a.send_bytes("#CHALLENGE#" + message);
    std::thread client([&b = b, &key] { conn::answer_challenge(b, key); });
    std::string response = a.recv_bytes();
    EXPECT_EQ(response, "{sha256}" + conn::_hmac("sha256", "secret", message));
    a.send_bytes("#WELCOME#");
    client.join();
  }
  {
    // Bogus input (OtherTest): no challenge, a short one, a FAILURE reply.
    auto [a, b] = conn::Pipe();
    a.send_bytes("something bogus");
    try {
      conn::answer_challenge(b, key);
      ADD_FAILURE();
    } catch (const mp::AuthenticationError& e) {
      EXPECT_EQ(std::string(e.what()), "Protocol error, expected challenge: message=b'something bogus'");
    }
    a.send_bytes("#CHALLENGE#short");
    EXPECT_THROW(conn::answer_challenge(b, key), mp::AuthenticationError);
    a.send_bytes("#CHALLENGE#" + std::string(20, 'x'));
    a.send_bytes("#FAILURE#");
    try {
      conn::answer_challenge(b, key);
      ADD_FAILURE();
    } catch (const mp::AuthenticationError& e) {
      EXPECT_STREQ(e.what(), "digest sent was rejected");
    }
    EXPECT_EQ(a.recv_bytes().size(), 16u);  // the MD5 answer it sent
    b.send_bytes(std::string(300, 'x'));    // a reply above 256 bytes
    EXPECT_THROW(conn::deliver_challenge(a, key), mp::OSError);
  }
}

// ---------------------------------------------------------------- bad clients

/// Bad clients: garbage, a truncated header, a length beyond the maximum,
/// a wrong key and a silent client each fail their own accept(); the listener
/// goes on and accepts a good client afterwards.
TEST_P(TestBadClients, ListenerSurvives) {
  mp::Bytes key("secret");
  conn::Listener l(std::nullopt, std::nullopt, 5, key);
  l.set_handshake_timeout(0.3);
  conn::Address address = l.address();

  auto expect_failure = [&](const std::string& what, auto&& client_side) {
    mp::os::Fd client = raw_client(address);
    client_side(client.get());
    try {
      l.accept();
      ADD_FAILURE() << what << ": accepted";
    } catch (const mp::Exception& e) {
      SCOPED_TRACE(what + ": " + mp::exception_type_name(e) + ": " + e.what());
      EXPECT_TRUE(dynamic_cast<const mp::AuthenticationError*>(&e) ||
                  dynamic_cast<const mp::OSError*>(&e) ||
                  dynamic_cast<const mp::EOFError*>(&e) ||
                  dynamic_cast<const mp::TimeoutError*>(&e));
    }
  };
  auto write_all = [](int fd, const std::string& data) {
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  };
  expect_failure("garbage", [&](int fd) {
    write_all(fd, "GET / HTTP/1.0\r\n\r\n");
    ::shutdown(fd, SHUT_WR);
  });
  expect_failure("truncated header", [&](int fd) {
    write_all(fd, std::string("\0\0", 2));
    ::shutdown(fd, SHUT_WR);
  });
  expect_failure("length beyond the maximum", [&](int fd) {
    write_all(fd, std::string("\x7f\xff\xff\xff", 4));
  });
  expect_failure("huge 8-byte length", [&](int fd) {
    write_all(fd, std::string("\xff\xff\xff\xff\x7f\xff\xff\xff\xff\xff\xff\xff", 12));
  });
  expect_failure("wrong digest", [&](int fd) {
    write_all(fd, conn::_frame_header(16) + std::string(16, 'x'));
  });
  double t0 = mp::os::monotonic();
  expect_failure("silent client", [&](int) {});
  EXPECT_LT(mp::os::monotonic() - t0, 5.0);
  expect_failure("trickling client", [&](int fd) { write_all(fd, std::string("\0", 1)); });

  // A good client in another process still gets in.
  mp::Process p({.target = connection_tests::good_client, .args = {address_object(address), key}});
  p.start();
  Connection good = l.accept();
  EXPECT_EQ(good.recv_bytes(), "good");
  join_process(p);
}

/// A host name that does not resolve: Python's socket.gaierror (an OSError),
/// "[Errno -2] Name or service not known" or, without a resolver,
/// "[Errno -3] Temporary failure in name resolution".
TEST(TestConnectionErrors, UnknownHostIsGaierror) {
  try {
    conn::Client(conn::Address(std::pair<std::string, int>("no-such-host.invalid", 6000)));
    ADD_FAILURE() << "connected";
  } catch (const mp::gaierror& e) {
    EXPECT_LT(e.errno_value(), 0);
    EXPECT_EQ(std::string(e.what()).rfind("[Errno " + std::to_string(e.errno_value()) + "] ", 0), 0u) << e.what();
    EXPECT_STREQ(e.python_name(), "socket.gaierror");
  }
}

/// The handshake timeout bounds the whole handshake, not each message: a
/// client that answers every message within the limit but takes longer than
/// it in all (0.7 s before each of its two messages, limit 1 s) is dropped
/// with TimeoutError: accept() does not wait for the second message.
TEST(TestHandshakeTimeout, BoundsTheWholeHandshake) {
  mp::Bytes key("secret");
  conn::Listener l(std::nullopt, std::nullopt, 1, key);
  l.set_handshake_timeout(1.0);
  std::thread slow_client([address = l.address(), key] {
    try {
      Connection c = conn::Client(address);  // no key: the handshake is done by hand
      mp::os::sleep(0.7);
      conn::answer_challenge(c, key);   // the listener's first read: 0.7 s in
      mp::os::sleep(0.7);
      conn::deliver_challenge(c, key);  // its second: 1.4 s in, past the limit
    } catch (const mp::Exception&) {
      // The listener gave up and closed: EOFError or BrokenPipeError here.
    }
  });
  double t0 = mp::os::monotonic();
  EXPECT_THROW(l.accept(), mp::TimeoutError);
  double elapsed = mp::os::monotonic() - t0;
  slow_client.join();
  EXPECT_GE(elapsed, 1.0);  // the limit, counted from the connection
}

// ---------------------------------------------------------------- _TestPoll

/// _TestPoll.test_empty_string
TEST(TestPollOnce, EmptyString) {
  auto [a, b] = conn::Pipe();
  EXPECT_FALSE(a.poll());
  b.send_bytes("");
  EXPECT_TRUE(a.poll());
  EXPECT_TRUE(a.poll());
  EXPECT_EQ(a.recv_bytes(), "");
}

/// _TestPoll.test_strings
TEST_P(TestPoll, Strings) {
  const std::vector<std::string>& strings = connection_tests::POLL_STRINGS;
  auto [a, b] = conn::Pipe();
  mp::Process p({.target = connection_tests::send_strings, .args = {b}});
  p.start();
  for (const std::string& s : strings) {
    for (int i = 0; i < 200; ++i) {
      if (a.poll(0.01)) break;
    }
    EXPECT_EQ(a.recv_bytes(), s);
  }
  join_process(p);
}

/// _TestPoll.test_boundaries
TEST_P(TestPoll, Boundaries) {
  auto [r, w] = conn::Pipe(false);
  mp::Process p({.target = connection_tests::poll_five, .args = {r}});
  p.start();
  mp::os::sleep(0.3);
  for (const char* obj : {"first", "second"}) w.send_bytes(obj);
  w.close();
  join_process(p);
  std::string got = r.recv_bytes();
  EXPECT_TRUE(got == "first" || got == "second") << got;
}

/// _TestPoll.test_dont_merge
TEST_P(TestPoll, DontMerge) {
  auto [a, b] = conn::Pipe();
  EXPECT_FALSE(a.poll(0.0));
  EXPECT_FALSE(a.poll(0.1));
  mp::Process p({.target = connection_tests::send_a_b_cd, .args = {b}});
  p.start();
  EXPECT_EQ(a.recv_bytes(), "a");
  EXPECT_TRUE(a.poll(1.0));
  EXPECT_TRUE(a.poll(1.0));
  EXPECT_EQ(a.recv_bytes(), "b");
  EXPECT_TRUE(a.poll(1.0));
  EXPECT_TRUE(a.poll(1.0));
  EXPECT_TRUE(a.poll(0.0));
  EXPECT_EQ(a.recv_bytes(), "cd");
  join_process(p);
}

// ---------------------------------------------------------------- wait

/// connection.wait() on every kind of object at once: connections, a
/// listener, a process and a raw fd in one list; the ready objects themselves
/// come back.
TEST_P(TestPoll, WaitMixed) {
  auto [a, b] = conn::Pipe();
  auto [c, d] = conn::Pipe();
  conn::Listener l;
  auto [go_r, go_w] = conn::Pipe(false);
  mp::Process p({.target = connection_tests::wait_for_go, .args = {go_r}});
  p.start();
  auto [raw_r, raw_w] = mp::os::pipe();

  std::vector<conn::Waitable> all = {a, c, l, p, raw_r.get()};
  EXPECT_TRUE(conn::wait(all, 0.05).empty());
  b.send_bytes("x");
  EXPECT_EQ(conn::wait(all, 1.0), std::vector<conn::Waitable>{a});
  EXPECT_EQ(conn::wait(all, 1.0).front().connection(), &a);
  ASSERT_EQ(::write(raw_w.get(), "y", 1), 1);
  Connection client = conn::Client(l.address());
  go_w.send_bytes("x");
  p.join();
  // Under forkserver the sentinel is the status pipe, which reaches EOF when
  // the server closes its end, a moment after join() read the exit code:
  // wait() returns as soon as one object is ready, so ask until all four are.
  std::vector<conn::Waitable> ready;
  wait_until([&] {
    ready = conn::wait(all, 1.0);
    return ready.size() == 4;
  });
  EXPECT_EQ(ready, (std::vector<conn::Waitable>{a, l, p, raw_r.get()}));
  EXPECT_EQ(ready[1].listener(), &l);
  EXPECT_EQ(ready[2].process(), &p);
  EXPECT_EQ(ready[3].fd(), raw_r.get());
  Connection accepted = l.accept();
  a.close();
  EXPECT_THROW(conn::wait(all, 0.0), mp::OSError);
}

/// Python: TestWait.test_wait(slow): four children send ten messages each on
/// their own pipe; wait() on the readers until every one has reached EOF.
void check_wait(bool slow) {
  std::vector<Connection> readers;
  std::vector<std::unique_ptr<mp::Process>> procs;
  for (int i = 0; i < 4; ++i) {
    auto [r, w] = mp::Pipe(false);
    procs.push_back(std::make_unique<mp::Process>(
        mp::ProcessOptions{.target = connection_tests::child_test_wait, .args = {w, slow}, .daemon = true}));
    procs.back()->start();
    w.close();
    readers.push_back(std::move(r));
  }
  std::vector<std::string> messages;
  std::vector<const Connection*> open;
  for (const Connection& r : readers) open.push_back(&r);
  while (!open.empty()) {
    std::vector<conn::Waitable> waitables;
    for (const Connection* r : open) waitables.emplace_back(*r);
    for (const conn::Waitable& ready : conn::wait(waitables)) {
      auto* r = const_cast<Connection*>(ready.connection());
      try {
        messages.push_back(r->recv().repr());
      } catch (const mp::EOFError&) {
        open.erase(std::find(open.begin(), open.end(), r));
        r->close();
      }
    }
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    for (auto& p : procs) expected.push_back("(" + std::to_string(i) + ", " + std::to_string(*p->pid()) + ")");
  }
  std::sort(messages.begin(), messages.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(messages, expected);
  for (auto& p : procs) join_process(*p);
}

/// TestWait.test_wait
TEST_P(TestWait, Wait) { check_wait(false); }

/// TestWait.test_wait_slow
TEST_P(TestWait, WaitSlow) { check_wait(true); }

/// Python: TestWait.test_wait_socket(slow): four children write "0\n".."9\n"
/// on plain sockets; wait() on the accepted sockets' fds until each is at EOF.
void check_wait_socket(bool slow) {
  // Python's socket.create_server listens with a backlog of many; with
  // Listener's default of 1, the kernel would make the fourth client wait to
  // retry its SYN (about a second).
  conn::Listener l(conn::InetAddress{"127.0.0.1", 0}, std::nullopt, /*backlog=*/4);
  std::vector<std::unique_ptr<mp::Process>> procs;
  for (int i = 0; i < 4; ++i) {
    procs.push_back(std::make_unique<mp::Process>(mp::ProcessOptions{
        .target = connection_tests::child_test_wait_socket, .args = {address_object(l.address()), slow},
        .daemon = true}));
    procs.back()->start();
  }
  std::vector<Connection> accepted;
  for (int i = 0; i < 4; ++i) accepted.push_back(l.accept());
  l.close();
  std::map<int, std::string> received;
  std::vector<int> readers;
  for (const Connection& c : accepted) readers.push_back(c.fileno());
  while (!readers.empty()) {
    for (int fd : conn::wait(readers)) {
      std::string msg = mp::os::read(fd, 32);
      if (msg.empty()) {
        readers.erase(std::find(readers.begin(), readers.end(), fd));
      } else {
        received[fd] += msg;
      }
    }
  }
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += std::to_string(i) + "\n";
  ASSERT_EQ(received.size(), 4u);
  for (const auto& [fd, data] : received) EXPECT_EQ(data, expected);
  for (auto& p : procs) join_process(*p);
}

/// TestWait.test_wait_socket
TEST_P(TestWait, WaitSocket) { check_wait_socket(false); }

/// TestWait.test_wait_socket_slow
TEST_P(TestWait, WaitSocketSlow) { check_wait_socket(true); }

/// TestWait.test_wait_timeout: nothing ready, wait() returns empty after the
/// whole timeout; then the one ready end comes back.
TEST(TestWaitOnce, WaitTimeout) {
  const double timeout = 5.0;
  auto [a, b] = mp::Pipe();
  auto start = std::chrono::steady_clock::now();
  std::vector<conn::Waitable> res = conn::wait({a, b}, timeout);
  std::chrono::duration<double> delta = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(res.empty());
  EXPECT_GT(delta.count(), timeout - 0.1);
  b.send(mp::Object());
  EXPECT_EQ(conn::wait({a, b}, 20), std::vector<conn::Waitable>{a});
}

/// TestWait.test_wait_integer: a sentinel (an int) among connections.  The
/// child sleeps 3 s: the sentinel alone becomes ready after about that long;
/// then each end that has a message joins it at once.  (The bounds are
/// CPython's, widened for a loaded machine.)
TEST_P(TestWait, WaitInteger) {
  const double expected = 3;
  mp::synchronize::Semaphore sem(0);
  auto [a, b] = mp::Pipe();
  mp::Process p({.target = connection_tests::signal_and_sleep, .args = {sem, expected}});
  p.start();
  const int sentinel = p.sentinel();
  ASSERT_TRUE(sem.acquire(true, 20));

  auto start = std::chrono::steady_clock::now();
  std::vector<conn::Waitable> res = conn::wait({a, sentinel, b}, expected + 20);
  std::chrono::duration<double> delta = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res, std::vector<conn::Waitable>{sentinel});
  EXPECT_EQ(res.at(0).fd(), sentinel);
  EXPECT_LT(delta.count(), expected + 10);
  EXPECT_GT(delta.count(), expected - 2);

  a.send(mp::Object());
  start = std::chrono::steady_clock::now();
  res = conn::wait({a, sentinel, b}, 20);
  delta = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res, (std::vector<conn::Waitable>{sentinel, b}));
  EXPECT_LT(delta.count(), 10);

  b.send(mp::Object());
  res = conn::wait({a, sentinel, b}, 20);
  EXPECT_EQ(res, (std::vector<conn::Waitable>{a, sentinel, b}));

  p.terminate();
  p.join();
}

/// TestWait.test_neg_timeout: a negative timeout polls and returns at once.
TEST(TestWaitOnce, NegTimeout) {
  auto [a, b] = mp::Pipe();
  auto start = std::chrono::steady_clock::now();
  std::vector<conn::Waitable> res = conn::wait({a}, -1);
  std::chrono::duration<double> delta = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(res.empty());
  EXPECT_LT(delta.count(), 1);
  a.close();
  b.close();
}

// ---------------------------------------------------------------- fd transfer

/// Python: test_fd_transfer and test_large_fd_transfer: a child receives the
/// fd of a file the test opened (numbered above 256 when `large`: the test
/// dup2s it there and the child fills every fd below 256 first) and writes
/// `data` through it; the test finds `data` in the file.
void check_fd_transfer(const std::string& data, bool large) {
  auto [c, child_conn] = mp::Pipe(true);
  mp::Process p({.target = connection_tests::writefd, .args = {child_conn, mp::Bytes(data), large},
                 .daemon = true});
  p.start();
  std::string path = mp::util::get_temp_dir() + "/fd_transfer";
  {
    mp::os::Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(f);
    if (large) {
      int newfd = 256;
      while (::fcntl(newfd, F_GETFD) != -1) ++newfd;
      f = mp::os::Fd(::fcntl(f.get(), F_DUPFD_CLOEXEC, newfd));
      ASSERT_GE(f.get(), 256);
    }
    mp::reduction::send_handle(c.fileno(), f.get());
  }
  join_process(p);
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), data);
  ::unlink(path.c_str());
}

/// _TestConnection.test_fd_transfer: the test sends the fd of a file it
/// opened; the child writes through the fd it received.
TEST_P(TestConnection, FdTransfer) { check_fd_transfer("foo", false); }

/// _TestConnection.test_large_fd_transfer (issue #11657): an fd above 256.
TEST_P(TestConnection, LargeFdTransfer) { check_fd_transfer("bar", true); }

/// _TestConnection.test_missing_fd_transfer: data without an fd in the
/// ancillary data is a RuntimeError.
TEST_P(TestConnection, MissingFdTransfer) {
  auto [c, child_conn] = mp::Pipe(true);
  mp::Process p({.target = connection_tests::send_data_without_fd, .args = {child_conn}, .daemon = true});
  p.start();
  EXPECT_THROW(mp::reduction::recv_handle(c.fileno()), mp::RuntimeError);
  join_process(p);
}

/// _TestConnection.test_context: the end of Python's `with a, b:` is close();
/// afterwards both are closed and recv() is an OSError.
TEST(TestConnectionOnce, Context) {
  auto [a, b] = mp::Pipe();
  a.send(1729);
  EXPECT_EQ(b.recv(), mp::Object(1729));
  EXPECT_FALSE(a.closed());
  EXPECT_FALSE(b.closed());
  a.close();
  b.close();
  EXPECT_TRUE(a.closed());
  EXPECT_TRUE(b.closed());
  EXPECT_THROW(a.recv(), mp::OSError);
  EXPECT_THROW(b.recv(), mp::OSError);
}

/// TestInvalidHandle.test_invalid_handles: poll() on an fd that is not open
/// is an OSError (not a crash); a negative fd is a ValueError at once.
TEST(TestInvalidHandleOnce, InvalidHandles) {
  {
    Connection c{mp::os::Fd(44977608)};
    // check that poll() doesn't crash
    try {
      c.poll();
    } catch (const mp::ValueError&) {
    } catch (const mp::OSError&) {
    }
  }  // closing the bogus fd fails quietly, as Python's __del__ would
  EXPECT_THROW(Connection(mp::os::Fd(-1)), mp::ValueError);
}

// ---------------------------------------------------------------- EINTR

/// TestIgnoreEINTR.test_ignore: SIGUSR1, which the child handles, arrives
/// while the child blocks in recv() and while it blocks in send_bytes() of more
/// than a pipe holds: neither call fails with EINTR (issue #17097).
TEST_P(TestIgnoreEINTR, Ignore) {
  auto [c, child_conn] = mp::Pipe();
  mp::Process p({.target = connection_tests::ignore_eintr, .args = {child_conn}, .daemon = true});
  p.start();
  child_conn.close();
  EXPECT_EQ(c.recv(), mp::Object("ready"));
  mp::os::sleep(0.1);
  mp::os::kill(*p.pid(), SIGUSR1);
  mp::os::sleep(0.1);
  c.send(1234);
  EXPECT_EQ(c.recv(), mp::Object(1234));
  mp::os::sleep(0.1);
  mp::os::kill(*p.pid(), SIGUSR1);
  EXPECT_EQ(c.recv_bytes(), std::string(connection_tests::CONN_MAX_SIZE, 'x'));
  mp::os::sleep(0.1);
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

/// TestIgnoreEINTR.test_ignore_listener: SIGUSR1 during Listener.accept().
TEST_P(TestIgnoreEINTR, IgnoreListener) {
  auto [c, child_conn] = mp::Pipe();
  mp::Process p({.target = connection_tests::ignore_eintr_listener, .args = {child_conn}, .daemon = true});
  p.start();
  child_conn.close();
  conn::Address address = connection_tests::address_from(c.recv());
  mp::os::sleep(0.1);
  mp::os::kill(*p.pid(), SIGUSR1);
  mp::os::sleep(0.1);
  Connection client = conn::Client(address);
  EXPECT_EQ(client.recv(), mp::Object("welcome"));
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------- close fds

/// TestCloseFds.test_closefd: a socket above fd 50 that the test opened is
/// open in a forked child, and not in a spawn or forkserver child, which get
/// only the fds passed to them (EBADF there).
TEST_P(TestCloseFds, Closefd) {
  auto [reader, writer] = mp::Pipe();
  mp::os::Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s);
  // Python's get_high_socket_fd: a number a fresh child has no fd as high as.
  mp::os::Fd high(::fcntl(s.get(), F_DUPFD, 50));
  ASSERT_GE(high.get(), 50);
  s.close();
  mp::Process p({.target = connection_tests::closefds, .args = {writer, high.get()}});
  p.start();
  writer.close();
  mp::Object e = reader.recv();
  join_process(p);
  if (GetParam() == "fork") {
    EXPECT_TRUE(e.is_none()) << e.repr();
  } else {
    EXPECT_EQ(e, mp::Object(std::int64_t{EBADF}));
  }
}

// ---------------------------------------------------------------- pickling connections

/// _TestPicklingConnections.test_pickling: a child accepts connections, of
/// each family and on a plain socket, and sends each accepted Connection to
/// the test over a pipe; a second child connects and writes; the test reads
/// what the second child wrote through the Connection the first one sent.
TEST_P(TestPicklingConnections, Pickling) {
  auto [lconn, lconn0] = mp::Pipe();
  mp::Process lp({.target = connection_tests::pickling_listener, .args = {lconn0}, .daemon = true});
  lp.start();
  lconn0.close();
  auto [rconn, rconn0] = mp::Pipe();
  mp::Process rp({.target = connection_tests::pickling_remote, .args = {rconn0}, .daemon = true});
  rp.start();
  rconn0.close();

  for (const std::string& family : conn::families) {
    std::string msg = "This connection uses family " + family;
    mp::Object address = lconn.recv();
    rconn.send(mp::Object::Tuple{{address, mp::Bytes(msg)}});
    Connection new_conn = lconn.recv().as<Connection>();
    std::string upper = msg;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(new_conn.recv(), mp::Object(mp::Bytes(upper)));
  }
  rconn.send(mp::Object());

  std::string msg = "This connection uses a normal socket";
  mp::Object address = lconn.recv();
  rconn.send(mp::Object::Tuple{{address, mp::Bytes(msg)}});
  Connection new_conn = lconn.recv().as<Connection>();
  std::string buf;
  for (std::string s; !(s = mp::os::read(new_conn.fileno(), 100)).empty();) buf += s;
  EXPECT_EQ(buf, "THIS CONNECTION USES A NORMAL SOCKET");
  new_conn.close();

  lconn.send(mp::Object());
  rconn.close();
  lconn.close();
  join_process(lp);
  join_process(rp);
  mp::resource_sharer::stop(60.0);  // Python: tearDownClass
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestConnection, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestListenerClient, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestPoll, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestBadClients, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestPicklingConnections, ::testing::ValuesIn(start_methods()),
                         method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestWait, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestIgnoreEINTR, ::testing::ValuesIn(start_methods()), method_name);
INSTANTIATE_TEST_SUITE_P(WithProcesses, TestCloseFds, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
