// multiprocessing/connection.cpp
// Mirrors CPython 3.11 Lib/multiprocessing/connection.py; see connection.hpp.
// The handshake is CPython 3.12's (a superset of 3.11's), reference §3.2–3.3.
#include "multiprocessing/connection.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing::connection {

namespace {

/// A buffer that a thread reuses for the messages it sends (or receives), so
/// that send() and recv() of a small object allocate nothing once warm.  A
/// Borrowed takes it out while in use, so that a send or recv nested in one
/// (a __reduce__ hook that sends, a rebuild function that connects) gets an
/// empty buffer of its own; it is put back afterwards, unless it grew beyond
/// kKeptBufferMax: one large message does not stay allocated for good.
constexpr std::size_t kKeptBufferMax = 64 * 1024;
thread_local std::string t_send_buffer;
thread_local std::string t_recv_buffer;

struct Borrowed {
  explicit Borrowed(std::string& home) : home(home), buf(std::move(home)) { buf.clear(); }
  ~Borrowed() {
    if (buf.capacity() <= kKeptBufferMax) home = std::move(buf);
  }
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  std::string& home;
  std::string buf;
};

/// Python reads a message into a new bytes object that it does not clear
/// first (PyBytes_FromStringAndSize(NULL, n)); std::string's resize() writes
/// '\0' into every byte it adds, which for a 1 MiB message is a pass over the
/// whole megabyte just before read() overwrites it (C++23's
/// resize_and_overwrite exists for this).  grow_unfilled(s, n) makes s n
/// bytes long, within its capacity, without writing the bytes it adds: the
/// caller fills them before anyone reads them.  With libstdc++ that is its
/// basic_string::_M_set_length (the length, and the '\0' after it), reached
/// through an explicit instantiation, which C++ lets name a private member;
/// with another standard library, a plain resize().
#if defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI
template <void (std::string::*SetLength)(std::string::size_type)>
struct UnfilledLength {
  friend void grow_unfilled(std::string& s, std::size_t n) { (s.*SetLength)(n); }
};
template struct UnfilledLength<&std::string::_M_set_length>;
void grow_unfilled(std::string& s, std::size_t n);
#else
void grow_unfilled(std::string& s, std::size_t n) { s.resize(n); }
#endif

/// A read with a deadline (the handshake's) that passed.
[[noreturn]] void throw_read_timeout() {
  throw TimeoutError("timed out waiting for the peer's message");
}

}  // namespace

// ------------------------------------------------------------------ framing

std::string _frame_header(std::uint64_t n) {
  // Python: struct.pack("!i", n), or struct.pack("!i", -1) + struct.pack("!Q", n).
  std::string header;
  if (n > 0x7fffffff) {
    header.assign(4, '\xff');
    for (int shift = 56; shift >= 0; shift -= 8) header += static_cast<char>((n >> shift) & 0xff);
  } else {
    for (int shift = 24; shift >= 0; shift -= 8) header += static_cast<char>((n >> shift) & 0xff);
  }
  return header;
}

std::optional<std::uint64_t> _frame_short_length(std::string_view four_bytes) {
  std::uint32_t raw = 0;
  for (int i = 0; i < 4; ++i) raw = (raw << 8) | static_cast<unsigned char>(four_bytes[i]);
  if (raw == 0xffffffffu) return std::nullopt;  // -1: the 8-byte length follows
  // Python unpacks "!i" (signed) and would read any other negative size as an
  // empty message, losing its place in the stream: refuse it instead.
  if (raw > 0x7fffffffu) throw OSError("bad message length");
  return raw;
}

std::uint64_t _frame_long_length(std::string_view eight_bytes) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(eight_bytes[i]);
  if (n > 0x7fffffffffffffffull) throw OSError("bad message length");
  return n;
}

// ------------------------------------------------------------------ Connection

Connection::Connection(os::Fd handle, bool readable, bool writable)
    : handle_(std::move(handle)), readable_(readable), writable_(writable) {
  if (handle_.get() < 0) throw ValueError("invalid handle");
  if (!readable && !writable) {
    throw ValueError("at least one of `readable` and `writable` must be True");
  }
}

void Connection::_check_closed() const {
  if (!handle_) throw OSError("handle is closed");
}

void Connection::_check_readable() const {
  if (!readable_) throw OSError("connection is write-only");
}

void Connection::_check_writable() const {
  if (!writable_) throw OSError("connection is read-only");
}

void Connection::_bad_message_length() {
  // Python: a duplex connection stays usable for sending; a read-only one is
  // useless now that its stream position is lost, so it is closed.
  if (writable_) {
    readable_ = false;
  } else {
    close();
  }
  throw OSError("bad message length");
}

int Connection::fileno() const {
  _check_closed();
  return handle_.get();
}

void Connection::close() { handle_.close(); }

void Connection::_send(std::string_view buf) {
  // Python: _send loops on os.write until everything is out.  On a socket,
  // send() with MSG_NOSIGNAL turns a vanished peer into EPIPE instead of a
  // SIGPIPE that would kill the process (Python ignores SIGPIPE at startup;
  // a C++ program does not).
  while (!buf.empty()) {
    ssize_t n;
    if (is_socket_) {
      n = ::send(handle_.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == ENOTSOCK) {
        is_socket_ = false;  // an os pipe: plain write from now on
        continue;
      }
    } else {
      n = ::write(handle_.get(), buf.data(), buf.size());
    }
    if (n < 0) {
      if (errno == EINTR) continue;  // PEP 475
      raise_os_error(is_socket_ ? "send" : "write", errno);
    }
    buf.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Connection::_send(std::string_view head, std::string_view body) {
  // Header and payload leave in one gathered write (sendmsg, or writev on an
  // os pipe): one system call per message and no copy of the payload to put
  // four bytes in front of it.  The bytes on the wire are those of two writes.
  while (!head.empty()) {
    iovec parts[2] = {{const_cast<char*>(head.data()), head.size()},
                      {const_cast<char*>(body.data()), body.size()}};
    ssize_t n;
    if (is_socket_) {
      msghdr msg{};
      msg.msg_iov = parts;
      msg.msg_iovlen = 2;
      // sendmsg with MSG_NOSIGNAL: EPIPE, not SIGPIPE, as in _send above.
      n = ::sendmsg(handle_.get(), &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == ENOTSOCK) {
        is_socket_ = false;  // an os pipe: writev from now on
        continue;
      }
    } else {
      // writev: the os pipe's gathered write.
      n = ::writev(handle_.get(), parts, 2);
    }
    if (n < 0) {
      if (errno == EINTR) continue;  // PEP 475
      raise_os_error(is_socket_ ? "sendmsg" : "writev", errno);
    }
    std::size_t sent = static_cast<std::size_t>(n);
    if (sent < head.size()) {
      head.remove_prefix(sent);
    } else {
      body.remove_prefix(sent - head.size());
      head = {};
    }
  }
  _send(body);  // what a partial write left of the payload
}

void Connection::_send_framed(std::string_view messages) {
  _check_closed();
  _check_writable();
  if (util::trace_enabled()) util::_trace("Connection send: fd " + std::to_string(handle_.get()) + ", " + std::to_string(messages.size()) + " bytes framed");
  _send(messages);
}

void Connection::send_bytes(std::string_view buf, std::size_t offset,
                            std::optional<std::size_t> size) {
  _check_closed();
  _check_writable();
  // Python's texts; "offset is negative" and "size is negative" cannot happen
  // with unsigned arguments.
  std::size_t n = buf.size();
  if (n < offset) throw ValueError("buffer length < offset");
  if (!size) {
    size = n - offset;
  } else if (n < offset + *size) {
    throw ValueError("buffer length < offset + size");
  }
  std::string_view payload = buf.substr(offset, *size);
  if (util::trace_enabled()) util::_trace("Connection send_bytes: fd " + std::to_string(handle_.get()) + ", " + std::to_string(payload.size()) + " bytes");
  std::string header = _frame_header(payload.size());
  if (payload.size() > 16384) {
    // The payload is large, so Nagle's algorithm won't be triggered, and we'd
    // better avoid the cost of concatenation (Python's comment): Python writes
    // header and payload with two calls; here one gathered write sends both.
    _send(header, payload);
  } else {
    // CPython issue #20540: concatenate before sending, to avoid delays due to Nagle's
    // algorithm on a TCP socket; and never send a 0-length buffer alone.
    header.append(payload);
    _send(header);
  }
}

std::size_t Connection::_recv(char* into, std::size_t size, bool at_message_start,
                              std::optional<double> deadline, bool one_read) {
  // Python: _recv: loop on os.read until `size` bytes came; 0 bytes means EOF.
  std::size_t got = 0;
  while (got < size) {
    // poll until readable: past the deadline, return what came so far.
    if (deadline && wait(std::vector<int>{handle_.get()}, *deadline - os::monotonic()).empty()) break;
    // read: whatever is there, up to what the message still lacks.
    ssize_t n = ::read(handle_.get(), into + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;  // PEP 475
      raise_os_error("read", errno);
    }
    if (n == 0) {
      if (got == 0 && at_message_start) throw EOFError("");
      throw OSError("got end of file during message");
    }
    got += static_cast<std::size_t>(n);
    if (one_read) break;
  }
  return got;
}

bool Connection::_recv_header(PartialMessage& part, std::optional<double> deadline) {
  // 4 bytes, and 8 more when those 4 say -1 (a message of 2 GiB or more).
  while (!part.size) {
    std::size_t want = part.header_got < 4 ? 4 : 12;
    part.header_got += _recv(part.header + part.header_got, want - part.header_got,
                             /*at_message_start=*/part.header_got == 0, deadline);
    if (part.header_got < want) return false;
    part.size = want == 4 ? _frame_short_length(std::string_view(part.header, 4))
                          : _frame_long_length(std::string_view(part.header + 4, 8));
  }
  return true;
}

bool Connection::_recv_bytes_resume(PartialMessage& part, std::optional<double> deadline) {
  if (!_recv_header(part, deadline)) return false;
  // Grow the buffer as the bytes arrive (1 MiB first, then doubling) instead of
  // allocating the announced size at once: a peer that announces 2 GiB and
  // sends 10 bytes costs 1 MiB, not 2 GiB (CPython allocates it all).  The
  // room added is not cleared (grow_unfilled): each read() below writes the
  // bytes, and the string is only handed on once all of them came.
  constexpr std::size_t kFirstRoom = std::size_t{1} << 20;
  std::uint64_t want = *part.size;
  while (part.got < want) {
    if (part.payload.size() == part.got) {
      std::uint64_t left = want - part.got;
      std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(left, std::max(kFirstRoom, part.got)));
      if (part.payload.capacity() - part.got < room) part.payload.reserve(part.got + room);
      grow_unfilled(part.payload, part.got + room);
    }
    std::size_t n = _recv(part.payload.data() + part.got, part.payload.size() - part.got, false,
                          deadline, /*one_read=*/true);
    if (n == 0) return false;  // the deadline passed first
    part.got += n;
  }
  if (util::trace_enabled()) util::_trace("Connection recv_bytes: fd " + std::to_string(handle_.get()) + ", " + std::to_string(part.payload.size()) + " bytes");
  return true;
}

bool Connection::_recv_bytes(std::string& payload, std::optional<std::size_t> maxsize,
                             std::optional<double> deadline) {
  PartialMessage part;
  // The length first, on its own: a message longer than maxsize is not read.
  if (!_recv_header(part, deadline)) throw_read_timeout();
  if (maxsize && *part.size > *maxsize) return false;
  // The payload goes into the caller's string, whose capacity is reused.
  part.payload = std::move(payload);
  part.payload.clear();
  if (!_recv_bytes_resume(part, deadline)) throw_read_timeout();
  payload = std::move(part.payload);
  return true;
}

std::string Connection::recv_bytes(std::optional<std::size_t> maxlength) {
  return _recv_bytes_before(maxlength, std::nullopt);
}

void Connection::recv_bytes_reusing(std::string& buffer) {
  _check_closed();
  _check_readable();
  _recv_bytes(buffer, std::nullopt, std::nullopt);
}

std::string Connection::_recv_bytes_before(std::optional<std::size_t> maxlength,
                                           std::optional<double> deadline) {
  _check_closed();
  _check_readable();
  std::string buf;
  if (!_recv_bytes(buf, maxlength, deadline)) _bad_message_length();
  return buf;
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::size_t offset) {
  _check_closed();
  _check_readable();
  std::size_t bytesize = buf.size();
  if (offset > bytesize) throw ValueError("offset too large");
  std::string result;
  _recv_bytes(result, std::nullopt, std::nullopt);
  std::size_t size = result.size();
  // Python: the message is read in full either way; when it does not fit, the
  // exception carries it.
  if (bytesize < offset + size) throw BufferTooShort(std::move(result));
  std::memcpy(buf.data() + offset, result.data(), size);
  return size;
}

std::size_t Connection::recv_bytes_into(std::string& buf, std::size_t offset) {
  return recv_bytes_into(std::as_writable_bytes(std::span<char>(buf.data(), buf.size())), offset);
}

void Connection::send(const Object& obj) {
  // Python: _send_bytes(_ForkingPickler.dumps(obj)).
  _send_pickle([&obj](std::string& out) { reduction::dump(obj, out); });
}

void Connection::_send_pickle(const std::function<void(std::string&)>& dump) {
  _check_closed();
  _check_writable();
  // The pickle is written straight after room left for the frame header, in
  // this thread's reused buffer: header and payload then leave in one write,
  // as send_bytes sends a small message, without copying the payload behind
  // the header.
  Borrowed message(t_send_buffer);
  constexpr std::size_t kShortHeader = 4;
  message.buf.append(kShortHeader, '\0');
  dump(message.buf);
  std::string_view payload = std::string_view(message.buf).substr(kShortHeader);
  if (util::trace_enabled()) util::_trace("Connection send_bytes: fd " + std::to_string(handle_.get()) + ", " + std::to_string(payload.size()) + " bytes");
  std::string header = _frame_header(payload.size());
  if (header.size() == kShortHeader) {
    std::memcpy(message.buf.data(), header.data(), kShortHeader);
    _send(message.buf);
  } else {
    // A payload of 2 GiB or more, with its longer header.
    _send(header, payload);
  }
}

Object Connection::recv() {
  _check_closed();
  _check_readable();
  // Python: _ForkingPickler.loads(self._recv_bytes()), the message read into
  // this thread's reused buffer.
  Borrowed message(t_recv_buffer);
  _recv_bytes(message.buf, std::nullopt, std::nullopt);
  return reduction::ForkingPickler::loads(message.buf);
}

bool Connection::poll(std::optional<double> timeout) {
  _check_closed();
  _check_readable();
  return !wait(std::vector<int>{handle_.get()}, timeout).empty();
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  if (duplex) {
    int fds[2];
    // SOCK_CLOEXEC in the same call, for the reason os::pipe gives (PEP 446).
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      raise_os_error("socketpair", errno);
    }
    if (util::trace_enabled()) util::_trace("socketpair: fds " + std::to_string(fds[0]) + ", " + std::to_string(fds[1]));
    os::Fd s1(fds[0]), s2(fds[1]);
    return {Connection(std::move(s1)), Connection(std::move(s2))};
  }
  auto [fd1, fd2] = os::pipe();
  return {Connection(std::move(fd1), true, false), Connection(std::move(fd2), false, true)};
}

// ------------------------------------------------------------------ addresses

Address parse_address(std::string_view text) {
  if (text.empty()) throw ValueError("empty address");
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos && colon + 1 < text.size() &&
      text.find('/') == std::string_view::npos &&
      text.substr(colon + 1).find_first_not_of("0123456789") == std::string_view::npos) {
    std::string digits(text.substr(colon + 1));
    if (digits.size() > 5 || std::stoi(digits) > 65535) {
      throw ValueError("port out of range: " + digits);
    }
    return InetAddress{std::string(text.substr(0, colon)), std::stoi(digits)};
  }
  return std::string(text);
}

std::string address_repr(const Address& address) {
  if (const auto* inet = std::get_if<InetAddress>(&address)) {
    return "(" + str_repr(inet->first) + ", " + std::to_string(inet->second) + ")";
  }
  const std::string& path = std::get<std::string>(address);
  // Python shows a str address as 'path', an abstract one with its NUL as \x00.
  return str_repr(path);
}

Address arbitrary_address(const std::string& family) {
  if (family == "AF_INET") return InetAddress{"localhost", 0};
  if (family == "AF_UNIX") {
    // Python: tempfile.mktemp(prefix='listener-', dir=util.get_temp_dir()):
    // 8 random characters of mktemp's alphabet.  A name, not a file: bind()
    // makes the file, and fails with EADDRINUSE in the unlikely clash.
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
    std::string random = os::urandom(8);
    std::string name = "listener-";
    for (unsigned char c : random) name += alphabet[c % (sizeof alphabet - 1)];
    return util::get_temp_dir() + "/" + name;
  }
  throw ValueError("unrecognized family");
}

std::string address_type(const Address& address) {
  if (std::holds_alternative<InetAddress>(address)) return "AF_INET";
  const std::string& text = std::get<std::string>(address);
  if (text.rfind("\\\\", 0) == 0) return "AF_PIPE";
  return "AF_UNIX";
}

namespace {

/// Python: _validate_family.
void _validate_family(const std::string& family) {
  if (family == "AF_PIPE") throw ValueError("Family AF_PIPE is not recognized.");
  if (family != "AF_UNIX" && family != "AF_INET") throw ValueError("unrecognized family");
}

/// A sockaddr for an address, as the socket module builds one from a str or a
/// (host, port) tuple.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNIX;
};

SockAddr to_sockaddr(const Address& address, const std::string& family) {
  SockAddr result;
  if (family == "AF_UNIX") {
    const auto* path = std::get_if<std::string>(&address);
    if (path == nullptr) throw TypeError("AF_UNIX address must be a path string");
    auto* un = reinterpret_cast<sockaddr_un*>(&result.storage);
    un->sun_family = AF_UNIX;
    if (path->size() >= sizeof un->sun_path) throw OSError("AF_UNIX path too long");
    std::memcpy(un->sun_path, path->data(), path->size());
    // An abstract name ('\0' first) counts exactly its bytes; a path its NUL too.
    result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path->size() +
                                           (path->empty() || (*path)[0] != '\0' ? 1 : 0));
    result.family = AF_UNIX;
    return result;
  }
  const auto* inet = std::get_if<InetAddress>(&address);
  if (inet == nullptr) throw TypeError("AF_INET address must be a (host, port) pair");
  if (inet->second < 0 || inet->second > 65535) {
    throw ValueError("port must be 0-65535: " + std::to_string(inet->second));
  }
  // Python's socket module resolves the host with getaddrinfo, IPv4 only for
  // AF_INET ("localhost" -> 127.0.0.1).
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(inet->first.empty() ? nullptr : inet->first.c_str(), nullptr, &hints,
                         &found);
  // Python: socket.gaierror, "[Errno -2] Name or service not known".
  if (rc == EAI_SYSTEM) raise_os_error("getaddrinfo", errno);
  if (rc != 0) throw gaierror(rc);
  if (found == nullptr) throw gaierror(EAI_NONAME);
  auto* in = reinterpret_cast<sockaddr_in*>(&result.storage);
  *in = *reinterpret_cast<sockaddr_in*>(found->ai_addr);
  ::freeaddrinfo(found);
  in->sin_port = htons(static_cast<std::uint16_t>(inet->second));
  result.length = sizeof(sockaddr_in);
  result.family = AF_INET;
  return result;
}

/// The Address a sockaddr names (Python: what getsockname()/accept() return).
Address from_sockaddr(const sockaddr_storage& storage, socklen_t length) {
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    char host[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return InetAddress{host, ntohs(in->sin_port)};
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
  std::size_t n = length > offsetof(sockaddr_un, sun_path)
                      ? length - offsetof(sockaddr_un, sun_path)
                      : 0;
  std::string path(un->sun_path, n);
  // A path comes with its terminating NUL; an abstract name has none.
  if (!path.empty() && path[0] != '\0') path = path.c_str();
  return path;
}

/// socket(2) with SOCK_CLOEXEC: no fork+exec elsewhere inherits it (PEP 446).
os::Fd make_socket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) raise_os_error("socket", errno);
  return os::Fd(fd);
}

}  // namespace

// ------------------------------------------------------------------ Listener

Listener::Listener(std::optional<Address> address, std::optional<std::string> family,
                   int backlog, std::optional<Bytes> authkey)
    : authkey_(std::move(authkey)) {
  // Python: family = family or (address and address_type(address)) or default_family
  family_ = family ? *family : address ? address_type(*address) : std::string("AF_UNIX");
  _validate_family(family_);
  Address wanted = address ? *address : arbitrary_address(family_);
  // Python: SocketListener.__init__.
  SockAddr where = to_sockaddr(wanted, family_);
  os::Fd sock = make_socket(where.family);
  if (where.family == AF_INET) {
    // SO_REUSEADDR, as Python sets it on POSIX: a listener restarted on the
    // same port does not wait for the old connections' TIME_WAIT to pass.
    int one = 1;
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      raise_os_error("setsockopt", errno);
    }
  }
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&where.storage), where.length) != 0) {
    raise_os_error("bind", errno);
  }
  if (::listen(sock.get(), backlog) != 0) raise_os_error("listen", errno);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    raise_os_error("getsockname", errno);
  }
  address_ = from_sockaddr(bound, length);
  if (where.family == AF_INET) {
    // Keep the name the caller gave? Python keeps getsockname()'s ('127.0.0.1', port).
  } else if (auto* path = std::get_if<std::string>(&address_); path && !path->empty() &&
                                                              (*path)[0] != '\0') {
    // Python: Finalize(self, os.unlink, args=(address,), exitpriority=0).  It
    // runs when the listener closes or is destroyed, or at exit.
    std::string file = *path;
    unlink_ = util::Finalize([file] { ::unlink(file.c_str()); }, 0, "unlink");
  }
  socket_ = std::move(sock);
}

int Listener::fileno() const {
  if (!socket_) throw OSError("listener is closed");
  return socket_.get();
}

Connection Listener::accept() {
  if (!socket_) throw OSError("listener is closed");
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  int fd;
  do {
    // accept4 with SOCK_CLOEXEC for the reason make_socket gives.  The new
    // socket is blocking, whatever the listener's (Python: s.setblocking(True)).
    fd = ::accept4(socket_.get(), reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) raise_os_error("accept", errno);
  Connection c{os::Fd(fd)};
  last_accepted_ = from_sockaddr(peer, length);
  if (authkey_) {
    // A client that goes silent must not stop the listener forever.  One
    // deadline for the whole handshake, not one per message: a client that
    // trickles its messages cannot hold accept() longer than the limit either.
    std::optional<double> deadline;
    if (handshake_timeout_) deadline = os::monotonic() + *handshake_timeout_;
    // On failure `c` is destroyed (closed) as the exception leaves.
    deliver_challenge(c, *authkey_, "", deadline);
    answer_challenge(c, *authkey_, deadline);
  }
  return c;
}

void Listener::close() {
  // Python: SocketListener.close: close the socket, then run the unlink finalizer.
  socket_.close();
  unlink_();
}

// ------------------------------------------------------------------ Client

Connection Client(const Address& address, std::optional<std::string> family,
                  std::optional<Bytes> authkey) {
  std::string fam = family ? *family : address_type(address);
  _validate_family(fam);
  // Python: SocketClient: a blocking connect.
  SockAddr where = to_sockaddr(address, fam);
  os::Fd sock = make_socket(where.family);
  int rc;
  do {
    rc = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&where.storage), where.length);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) raise_os_error("connect", errno);
  Connection c{std::move(sock)};
  if (authkey) {
    answer_challenge(c, *authkey);
    deliver_challenge(c, *authkey);
  }
  return c;
}

// ------------------------------------------------------------------ authentication

namespace {

/// libcrypto's functions that the handshake uses, loaded at the first
/// handshake instead of with the program.  Python imports hmac only inside
/// deliver_challenge and answer_challenge; here, a program that never
/// authenticates (most spawned children) does not load and relocate libcrypto
/// at every start, about 1 ms (bench/README.md, "spawn").
struct Libcrypto {
  decltype(&::EVP_md5) EVP_md5;
  decltype(&::EVP_sha256) EVP_sha256;
  decltype(&::EVP_sha384) EVP_sha384;
  decltype(&::EVP_sha3_256) EVP_sha3_256;
  decltype(&::EVP_sha3_384) EVP_sha3_384;
  decltype(&::HMAC) HMAC;
  decltype(&::RAND_bytes) RAND_bytes;
  decltype(&::CRYPTO_memcmp) CRYPTO_memcmp;
};

const Libcrypto& libcrypto() {
  static const Libcrypto lib = [] {
    // RTLD_NOW: a missing symbol shows here, not in the middle of a handshake.
    void* handle = ::dlopen(MP_LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw OSError(std::string("cannot load libcrypto: ") + ::dlerror());
    auto symbol = [handle](const char* name) {
      void* address = ::dlsym(handle, name);
      if (address == nullptr) throw OSError(std::string("libcrypto has no ") + name);
      return address;
    };
    Libcrypto l{};
    l.EVP_md5 = reinterpret_cast<decltype(l.EVP_md5)>(symbol("EVP_md5"));
    l.EVP_sha256 = reinterpret_cast<decltype(l.EVP_sha256)>(symbol("EVP_sha256"));
    l.EVP_sha384 = reinterpret_cast<decltype(l.EVP_sha384)>(symbol("EVP_sha384"));
    l.EVP_sha3_256 = reinterpret_cast<decltype(l.EVP_sha3_256)>(symbol("EVP_sha3_256"));
    l.EVP_sha3_384 = reinterpret_cast<decltype(l.EVP_sha3_384)>(symbol("EVP_sha3_384"));
    l.HMAC = reinterpret_cast<decltype(l.HMAC)>(symbol("HMAC"));
    l.RAND_bytes = reinterpret_cast<decltype(l.RAND_bytes)>(symbol("RAND_bytes"));
    l.CRYPTO_memcmp = reinterpret_cast<decltype(l.CRYPTO_memcmp)>(symbol("CRYPTO_memcmp"));
    return l;
  }();
  return lib;
}

/// Python 3.12: _ALLOWED_DIGESTS.
bool is_allowed_digest(std::string_view name) {
  return name == "md5" || name == "sha256" || name == "sha384" || name == "sha3_256" ||
         name == "sha3_384";
}

/// An allowed digest's OpenSSL object, or nullptr.
const EVP_MD* digest_by_name(std::string_view name) {
  if (!is_allowed_digest(name)) return nullptr;
  const Libcrypto& c = libcrypto();
  if (name == "md5") return c.EVP_md5();
  if (name == "sha256") return c.EVP_sha256();
  if (name == "sha384") return c.EVP_sha384();
  if (name == "sha3_256") return c.EVP_sha3_256();
  return c.EVP_sha3_384();
}

/// Python 3.12: _get_digest_name_and_payload(msg).  A 20- or 16-byte message is
/// 3.11's (no prefix: ""); otherwise "{name}payload" with an allowed name.
std::pair<std::string, std::string_view> _get_digest_name_and_payload(std::string_view msg) {
  if (msg.size() == MESSAGE_LENGTH || msg.size() == 16) return {"", msg};
  if (!msg.empty() && msg[0] == '{') {
    // The closing brace within the longest allowed name's reach: msg[1:max_len+2].
    std::string_view head = msg.substr(1, 8 + 1);
    auto close = head.find('}');
    if (close != std::string_view::npos) {
      std::string name(head.substr(0, close));
      if (is_allowed_digest(name)) return {name, msg.substr(close + 2)};
    }
  }
  throw AuthenticationError(
      "unsupported message length, missing digest prefix, or unsupported digest: message=" +
      bytes_repr(msg));
}

/// Python 3.12: _create_response(authkey, message).
std::string _create_response(const Bytes& authkey, std::string_view message) {
  std::string name = _get_digest_name_and_payload(message).first;
  if (name.empty()) return _hmac("md5", authkey.data, message);  // 3.11: the raw MD5
  // The MAC covers the "{name}" prefix too, so that a man in the middle
  // cannot downgrade the digest.
  return "{" + name + "}" + _hmac(name, authkey.data, message);
}

}  // namespace

std::string _hmac(std::string_view digest_name, std::string_view key, std::string_view message) {
  const EVP_MD* md = digest_by_name(digest_name);
  if (md == nullptr) throw ValueError("unsupported digest " + std::string(digest_name));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_length = 0;
  if (libcrypto().HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
           &out_length) == nullptr) {
    throw ValueError("HMAC failed for digest " + std::string(digest_name));
  }
  return std::string(reinterpret_cast<const char*>(out), out_length);
}

void deliver_challenge(Connection& connection, const Bytes& authkey,
                       std::string_view digest_name, std::optional<double> deadline) {
  // The random part, from libcrypto's CSPRNG (Python: os.urandom).
  std::size_t random_length = digest_name.empty() ? MESSAGE_LENGTH : PREFIXED_MESSAGE_LENGTH;
  if (!digest_name.empty() && !is_allowed_digest(digest_name)) {
    throw ValueError("unsupported digest " + std::string(digest_name));
  }
  std::string random(random_length, '\0');
  if (libcrypto().RAND_bytes(reinterpret_cast<unsigned char*>(random.data()),
                 static_cast<int>(random.size())) != 1) {
    throw OSError("RAND_bytes failed");
  }
  std::string message =
      digest_name.empty() ? random : "{" + std::string(digest_name) + "}" + random;
  connection.send_bytes(std::string(CHALLENGE) + message);
  std::string response = connection._recv_bytes_before(HANDSHAKE_MAXLENGTH, deadline);
  // Python 3.12: _verify_challenge(authkey, message, response).
  try {
    auto [name, mac] = _get_digest_name_and_payload(response);
    if (name.empty()) name = "md5";
    std::string expected = _hmac(name, authkey.data, message);
    if (mac.size() != expected.size()) {
      throw AuthenticationError("expected '" + name + "' of length " +
                                std::to_string(expected.size()) + " got " +
                                std::to_string(mac.size()));
    }
    // Constant time (Python 3.12: hmac.compare_digest; 3.11 used ==).
    if (libcrypto().CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
      throw AuthenticationError("digest received was wrong");
    }
  } catch (const AuthenticationError&) {
    connection.send_bytes(FAILURE);
    throw;
  }
  connection.send_bytes(WELCOME);
}

void answer_challenge(Connection& connection, const Bytes& authkey,
                      std::optional<double> deadline) {
  std::string message = connection._recv_bytes_before(HANDSHAKE_MAXLENGTH, deadline);
  if (message.compare(0, CHALLENGE.size(), CHALLENGE) != 0) {
    throw AuthenticationError("Protocol error, expected challenge: message=" +
                              bytes_repr(message));
  }
  message.erase(0, CHALLENGE.size());
  if (message.size() < MESSAGE_LENGTH) {
    throw AuthenticationError("challenge too short: " + std::to_string(message.size()) +
                              " bytes");
  }
  connection.send_bytes(_create_response(authkey, message));
  std::string response = connection._recv_bytes_before(HANDSHAKE_MAXLENGTH, deadline);
  if (response != WELCOME) throw AuthenticationError("digest sent was rejected");
}

// ------------------------------------------------------------------ wait

int Waitable::fileno() const {
  struct Visitor {
    int operator()(int fd) const { return fd; }
    int operator()(const Connection* c) const { return c->fileno(); }
    int operator()(const Listener* l) const { return l->fileno(); }
    int operator()(const BaseProcess* p) const { return p->sentinel(); }
  };
  return std::visit(Visitor{}, object_);
}

const Connection* Waitable::connection() const {
  auto* p = std::get_if<const Connection*>(&object_);
  return p ? *p : nullptr;
}
const Listener* Waitable::listener() const {
  auto* p = std::get_if<const Listener*>(&object_);
  return p ? *p : nullptr;
}
const BaseProcess* Waitable::process() const {
  auto* p = std::get_if<const BaseProcess*>(&object_);
  return p ? *p : nullptr;
}
std::optional<int> Waitable::fd() const {
  auto* p = std::get_if<int>(&object_);
  return p ? std::optional<int>(*p) : std::nullopt;
}

std::vector<Waitable> wait(const std::vector<Waitable>& object_list,
                           std::optional<double> timeout) {
  std::vector<int> fds;
  fds.reserve(object_list.size());
  for (const Waitable& w : object_list) fds.push_back(w.fileno());
  std::vector<int> ready_fds = wait(fds, timeout);
  // Python returns the registered objects themselves; so does this, in the
  // order given.  (Two objects on one fd are both ready or both not.)
  std::vector<Waitable> ready;
  for (std::size_t i = 0; i < object_list.size(); ++i) {
    if (std::find(ready_fds.begin(), ready_fds.end(), fds[i]) != ready_fds.end()) {
      ready.push_back(object_list[i]);
    }
  }
  return ready;
}

std::vector<int> wait(std::initializer_list<int> object_list, std::optional<double> timeout) {
  return wait(std::vector<int>(object_list), timeout);
}

std::vector<int> wait(const std::vector<int>& object_list, std::optional<double> timeout) {
  // Python registers every object with a selectors.PollSelector; poll(2) is
  // what that does underneath.
  std::vector<pollfd> fds;
  fds.reserve(object_list.size());
  for (int fd : object_list) {
    if (fd < 0) throw ValueError("invalid file descriptor: " + std::to_string(fd));
    fds.push_back(pollfd{fd, POLLIN, 0});
  }
  std::optional<double> deadline;
  if (timeout) deadline = os::monotonic() + *timeout;

  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      double remaining = *deadline - os::monotonic();
      // Round up, so that a wait never ends before its timeout has passed.
      timeout_ms = remaining <= 0 ? 0 : static_cast<int>(std::ceil(remaining * 1000.0));
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      // PEP 475: interrupted by a signal: wait on with the time that is left.
      if (errno == EINTR) continue;
      raise_os_error("poll", errno);
    }
    std::vector<int> ready;
    for (const pollfd& p : fds) {
      // POLLHUP: the writing end is closed (a sentinel whose child exited);
      // POLLNVAL would mean an fd that was never open: report it ready, as a
      // read on it fails at once, rather than hang.
      if (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ready.push_back(p.fd);
    }
    if (!ready.empty() || n == 0) {
      if (ready.empty() && deadline && os::monotonic() < *deadline) continue;
      return ready;
    }
  }
}

}  // namespace multiprocessing::connection

// ------------------------------------------------------------------ pickling

namespace multiprocessing {

namespace {
// The unpickler may name it (ForkingPickler's allow-list).
const bool connection_globals_registered = [] {
  reduction::ForkingPickler::register_global("multiprocessing.connection", "rebuild_connection");
  return true;
}();
}  // namespace

Object Convert<connection::Connection>::to_object(const connection::Connection& c) {
  // A duplicate, held as long as this value lives (Python's args keep the
  // Connection object itself alive).
  auto fd = std::make_shared<os::Fd>(::fcntl(c.fileno(), F_DUPFD_CLOEXEC, 0));
  if (!*fd) raise_os_error("fcntl", errno);
  bool readable = c.readable(), writable = c.writable();
  Object::Reduced r{{"multiprocessing.connection", "rebuild_connection"}, {Object(), readable, writable}};
  r.local = fd;
  // Python: reduce_connection(conn) -> rebuild_connection, (DupFd(fd), r, w).
  r.reduce = [fd, readable, writable] {
    return Object(Object::Reduced{{"multiprocessing.connection", "rebuild_connection"},
                                  {reduction::DupFd(fd->get()), readable, writable}});
  };
  return r;
}

connection::Connection Convert<connection::Connection>::from_object(const Object& obj) {
  const Object::Reduced* r = obj.reduced();
  if (r == nullptr || r->callable.qualname != "rebuild_connection" || r->args.size() != 3) {
    throw UnpicklingError("expected a pickled Connection, got " + obj.repr());
  }
  bool readable = r->args[1].as<bool>();
  bool writable = r->args[2].as<bool>();
  if (r->local) {
    // In memory (fork): a duplicate of the same fd for this Connection.
    const auto& held = *static_cast<const os::Fd*>(r->local.get());
    os::Fd fd(::fcntl(held.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) raise_os_error("fcntl", errno);
    return connection::Connection(std::move(fd), readable, writable);
  }
  // Python: rebuild_connection(df, readable, writable): fd = df.detach().
  return connection::Connection(os::Fd(reduction::_detach_dup_fd(r->args[0])), readable, writable);
}

}  // namespace multiprocessing
