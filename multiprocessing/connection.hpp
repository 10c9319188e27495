// multiprocessing/connection.hpp
// Mirrors CPython 3.11 Lib/multiprocessing/connection.py (the POSIX half): the
// Connection class and its framing, Pipe(), Listener and Client over AF_UNIX and
// AF_INET sockets, the HMAC challenge that authenticates a connection, and wait().
//
// The bytes on the wire are CPython's own (reference §3.1–3.3), so a C++ program
// and a Python program can be each other's peer:
//   - a message is a 4-byte big-endian signed length and the payload; a payload
//     above 0x7fffffff bytes is sent as ff ff ff ff, an 8-byte big-endian length,
//     then the payload;
//   - authentication is CPython's HMAC challenge: 3.11's HMAC-MD5 form and 3.12's
//     "{sha256}"-prefixed form are both understood on either side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "multiprocessing/os.hpp"
#include "multiprocessing/reduction.hpp"
#include "multiprocessing/util.hpp"

namespace multiprocessing {
class BaseProcess;
}

namespace multiprocessing::connection {

/// Python: connection.BUFSIZE.
inline constexpr std::size_t BUFSIZE = 8192;
/// Python: connection.CONNECTION_TIMEOUT (seconds).  Here: how long
/// Listener::accept() gives a client to finish the whole handshake (one
/// deadline for all its messages, as Python's _init_timeout/_check_timeout
/// make one deadline for a connection attempt) before it gives that client up
/// (CPython 3.11 waits forever).
inline constexpr double CONNECTION_TIMEOUT = 20.0;
/// Python 3.11: connection.MESSAGE_LENGTH, the random part of a 3.11 challenge.
inline constexpr std::size_t MESSAGE_LENGTH = 20;
/// Python 3.12: MESSAGE_LENGTH, the random part of a digest-prefixed challenge.
inline constexpr std::size_t PREFIXED_MESSAGE_LENGTH = 40;
/// Python: connection.CHALLENGE, WELCOME, FAILURE.
inline constexpr std::string_view CHALLENGE = "#CHALLENGE#";
inline constexpr std::string_view WELCOME = "#WELCOME#";     ///< see CHALLENGE
inline constexpr std::string_view FAILURE = "#FAILURE#";     ///< see CHALLENGE
/// The largest handshake message either side accepts (Python: recv_bytes(256)).
inline constexpr std::size_t HANDSHAKE_MAXLENGTH = 256;

// ------------------------------------------------------------------ framing

/// The frame header for a payload of `n` bytes (reference §3.1): 4 bytes
/// big-endian for n <= 0x7fffffff, else ff ff ff ff and 8 bytes big-endian.
/// Python: the struct.pack calls of Connection._send_bytes.
std::string _frame_header(std::uint64_t n);

/// Read a frame header from its first 4 bytes.  Returns the payload length, or
/// nullopt when the 4 bytes are ff ff ff ff and the 8-byte length follows (then
/// pass those 8 bytes to _frame_long_length()).
/// \throws OSError "bad message length" for any other negative length (CPython
///   reads it as an empty message and loses the stream; the port refuses it).
std::optional<std::uint64_t> _frame_short_length(std::string_view four_bytes);

/// The 8-byte big-endian length that follows ff ff ff ff.
/// \throws OSError "bad message length" above 2**63 - 1.
std::uint64_t _frame_long_length(std::string_view eight_bytes);

// ------------------------------------------------------------------ Connection

/// Python: connection.Connection: a message channel over a POSIX fd (a socket
/// or one end of an os pipe).  Move-only; the fd is closed by close() or the
/// destructor (Python: __del__).  One thread at a time per direction, as in Python.
class Connection {
 public:
  /// Python: Connection(handle, readable=True, writable=True).  Takes the fd.
  /// \throws ValueError "invalid handle" for a negative fd, "at least one of
  ///   `readable` and `writable` must be True".
  explicit Connection(os::Fd handle, bool readable = true, bool writable = true);
  Connection(Connection&&) noexcept = default;
  /// Moving over an open connection closes it first.
  Connection& operator=(Connection&&) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() = default;

  /// Python: closed (property): true once close() ran.
  bool closed() const noexcept { return !handle_; }
  /// Python: readable (property).  False after a "bad message length" on a duplex one.
  bool readable() const noexcept { return readable_; }
  /// Python: writable (property).
  bool writable() const noexcept { return writable_; }
  /// Python: fileno().  \throws OSError "handle is closed".
  int fileno() const;
  /// Python: close(): idempotent.
  void close();

  /// Python: send_bytes(buf, offset=0, size=None): send buf[offset:offset+size]
  /// as one message.
  /// \throws ValueError "offset is negative" (never: unsigned), "buffer length <
  ///   offset", "size is negative" (never), "buffer length < offset + size";
  ///   OSError "handle is closed" / "connection is read-only", or the write's
  ///   error (EPIPE when the peer is gone; a socket never raises SIGPIPE).
  void send_bytes(std::string_view buf, std::size_t offset = 0,
                  std::optional<std::size_t> size = std::nullopt);

  /// Python: recv_bytes(maxlength=None): the next message.  The buffer grows
  /// with the bytes that arrive, not with the length the peer announced.
  /// \throws EOFError at a clean end of stream between messages; OSError "got
  ///   end of file during message" inside one; OSError "bad message length"
  ///   when it is longer than maxlength (the payload stays unread; a duplex
  ///   connection becomes unreadable, a simplex one is closed, as in Python);
  ///   OSError "handle is closed" / "connection is write-only".
  std::string recv_bytes(std::optional<std::size_t> maxlength = std::nullopt);

  /// recv_bytes() into the caller's `buffer`: the next message replaces what
  /// it held, written into the room it already has, so that a loop reading
  /// message after message into one string allocates only for a message
  /// longer than any before it (a manager's serve_client reads each request
  /// this way).  Python has no twin: its recv_bytes() makes a new bytes
  /// object each time.  The buffer keeps its room afterwards: a caller that
  /// may see a huge message gives the room back itself.
  /// \throws what recv_bytes() throws (no maxlength here); after an error
  ///   the buffer is valid but its content is unspecified.
  void recv_bytes_reusing(std::string& buffer);

  /// Python: recv_bytes_into(buf, offset=0): read the next message into
  /// buf[offset:], return its length.  `offset` counts bytes.
  /// \throws ValueError "negative offset" (never), "offset too large";
  ///   BufferTooShort carrying the whole message when it does not fit (the
  ///   message is consumed, as in Python); the errors of recv_bytes().
  std::size_t recv_bytes_into(std::span<std::byte> buf, std::size_t offset = 0);
  /// The same into a std::string's bytes (its size is the buffer's size).
  std::size_t recv_bytes_into(std::string& buf, std::size_t offset = 0);

  /// Python: send(obj): send_bytes(ForkingPickler.dumps(obj)), pickle protocol 4,
  /// so a Python peer's recv() reads it.  Any type with a Convert<T> becomes an
  /// Object on the way: `c.send(Object::List{2.25, None{}, "junk"})`.
  /// \throws PicklingError from the pickler; what send_bytes() throws.
  void send(const Object& obj);
  /// Python: recv(): the next message, unpickled (ForkingPickler.loads).
  /// \throws what recv_bytes() throws; UnpicklingError for a bad pickle.
  Object recv();

  /// Python: poll(timeout=0.0): whether a message (or EOF) can be read without
  /// blocking; waits up to `timeout` seconds, forever for nullopt, not at all
  /// for a negative or zero timeout.  \throws OSError "handle is closed" /
  ///   "connection is write-only".
  bool poll(std::optional<double> timeout = 0.0);

  /// Internal: recv_bytes that gives up at `deadline` (a monotonic time, the
  /// same for every read of the message); \throws TimeoutError past it.  Used
  /// by the handshake of Listener::accept, with one deadline for the handshake.
  std::string _recv_bytes_before(std::optional<std::size_t> maxlength,
                                 std::optional<double> deadline);

  /// Internal: one message read in parts, for a reader that may give up
  /// before the message is whole and come back for the rest (a Queue's get()
  /// with a timeout).  What arrived so far stays here between calls.
  struct PartialMessage {
    char header[12] = {};                   ///< the 4-byte length, then 8 more if it said -1
    std::size_t header_got = 0;             ///< header bytes read so far
    std::optional<std::uint64_t> size;      ///< the payload's length, once the header is whole
    std::string payload;                    ///< grows as the bytes arrive
    std::size_t got = 0;                    ///< payload bytes read so far
    /// Some bytes of the message have been read.
    bool started() const { return header_got > 0; }
    /// Header and payload bytes read so far.
    std::size_t progress() const { return header_got + got; }
  };

  /// Internal: go on reading the message `part` holds until it is whole
  /// (true), or until `deadline` (a monotonic time) passes with part of it
  /// still to come (false; `part` keeps what arrived).  nullopt: no deadline.
  /// \throws EOFError at end of file before the message starts; OSError "got
  ///   end of file during message" after; OSError from read().
  bool _recv_bytes_resume(PartialMessage& part, std::optional<double> deadline);

  /// Internal: write bytes that are already whole framed messages (see
  /// _frame_header), several of them in one go: a Queue's feeder thread
  /// writes what has piled up with one system call.  The reader sees the
  /// same messages as from one send_bytes each.
  void _send_framed(std::string_view messages);

  /// Internal: send() with the caller's pickler: `dump` appends the pickle
  /// of the message to the string it is given (as reduction::dump does),
  /// and it leaves as send() sends one.  A manager's client and server send
  /// their usual calls this way, through the fast paths of
  /// reduction/pickle.hpp (dump_call_request, dump_call_reply).
  /// \throws what `dump` throws, and nothing is sent then; what send() throws.
  void _send_pickle(const std::function<void(std::string&)>& dump);

 private:
  void _check_closed() const;
  void _check_readable() const;
  void _check_writable() const;
  [[noreturn]] void _bad_message_length();
  void _send(std::string_view buf);
  /// _send(head) then _send(body), with both in one system call when it
  /// takes them whole.
  void _send(std::string_view head, std::string_view body);
  /// Read `size` bytes, fewer only if `deadline` passes first: returns how
  /// many came.  `at_message_start` decides EOFError vs OSError at EOF.
  /// `one_read`: return after the first read() that brings bytes, with what
  /// it brought.
  std::size_t _recv(char* into, std::size_t size, bool at_message_start,
                    std::optional<double> deadline, bool one_read = false);
  /// Read the header of the message `part` holds, if not read yet: true once
  /// its length is known, false if `deadline` passes first.
  bool _recv_header(PartialMessage& part, std::optional<double> deadline);
  /// Python: _recv_bytes(maxsize): the next message's payload into `payload`
  /// (replacing what it held); false, and nothing read, when it is longer
  /// than maxsize.
  bool _recv_bytes(std::string& payload, std::optional<std::size_t> maxsize,
                   std::optional<double> deadline);

  os::Fd handle_;
  bool readable_ = true;
  bool writable_ = true;
  bool is_socket_ = true;  // send(MSG_NOSIGNAL) until ENOTSOCK says it is a pipe
};

/// Python: Pipe(duplex=True) (POSIX): a connected pair.  Duplex: a socketpair
/// (AF_UNIX, SOCK_STREAM), both ends readable and writable.  Simplex: an os
/// pipe; first is read-only, second write-only.  Both fds are close-on-exec.
/// \throws OSError.
std::pair<Connection, Connection> Pipe(bool duplex = true);

// ------------------------------------------------------------------ addresses

/// An AF_INET address: Python's (host, port) tuple.
using InetAddress = std::pair<std::string, int>;

/// A listener or client address, as Python's `address` argument:
///  - a std::string is an AF_UNIX path; one that begins with '\0' is a Linux
///    abstract name (no file: it vanishes with its last socket);
///  - an InetAddress {host, port} is AF_INET (Python's ('127.0.0.1', 6000)).
using Address = std::variant<std::string, InetAddress>;

/// Parse command-line text: "HOST:PORT" (the port all digits) is AF_INET,
/// anything else an AF_UNIX path.  (No Python twin: a Python program writes
/// the tuple.)  \throws ValueError for an empty text or a port above 65535.
Address parse_address(std::string_view text);

/// Python: repr of an address: "'/tmp/x'" or "('127.0.0.1', 6000)".
std::string address_repr(const Address& address);

/// Python: connection.families on POSIX.
inline const std::vector<std::string> families = {"AF_INET", "AF_UNIX"};

/// Python: arbitrary_address(family): ("localhost", 0) for AF_INET; for
/// AF_UNIX a fresh path "<util::get_temp_dir()>/listener-XXXXXXXX".
/// \throws ValueError "unrecognized family".
Address arbitrary_address(const std::string& family);

/// Python: address_type(address): "AF_INET" for an InetAddress; for a string,
/// "AF_PIPE" if it starts with two backslashes, else "AF_UNIX".
std::string address_type(const Address& address);

// ------------------------------------------------------------------ Listener / Client

/// Python: connection.Listener (with SocketListener inside): a bound, listening
/// socket that accepts connections, authenticating each when given an authkey.
///
/// Differences from CPython 3.11, each where 3.11 is known to hang or misbehave:
///  - an authkey that is set, even empty, authenticates (3.12, gh-88118; 3.11
///    skipped it for b'', so a client with b'' hung);
///  - a client that has not finished the handshake CONNECTION_TIMEOUT seconds
///    after it connected is dropped with TimeoutError (3.11 waits forever).
///    The limit is for the whole handshake, not per message, so that neither a
///    silent client nor one that trickles its messages holds accept() longer.
/// A failed handshake closes that one connection and throws; the listener
/// stays open and the next accept() works.
class Listener {
 public:
  /// Python: Listener(address=None, family=None, backlog=1, authkey=None).
  /// family from the argument, else from the address, else "AF_UNIX"; address
  /// defaults to arbitrary_address(family).  An AF_UNIX socket file is unlinked
  /// when the listener closes (a Finalize with exit priority 0).
  /// \throws ValueError "Family AF_PIPE is not recognized." / "unrecognized
  ///   family"; OSError from socket/bind/listen (EADDRINUSE...).
  explicit Listener(std::optional<Address> address = std::nullopt,
                    std::optional<std::string> family = std::nullopt, int backlog = 1,
                    std::optional<Bytes> authkey = std::nullopt);
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  /// Closes (and unlinks the socket file), as close() does.
  ~Listener() = default;

  /// Python: accept(): the next connection, authenticated (deliver_challenge
  /// then answer_challenge) when the listener has an authkey.  Sets last_accepted().
  /// \throws OSError "listener is closed"; AuthenticationError, TimeoutError,
  ///   OSError, EOFError from a failed handshake (that connection is closed).
  Connection accept();
  /// Python: close(): close the socket, unlink its file.  Idempotent.
  void close();
  /// Whether close() ran.
  bool closed() const noexcept { return !socket_; }
  /// Python: address (property): the bound address (the real port after port 0).
  const Address& address() const noexcept { return address_; }
  /// Python: last_accepted (property): the address of the last peer accepted
  /// (for AF_UNIX usually the empty string: clients are unnamed).
  const std::optional<Address>& last_accepted() const noexcept { return last_accepted_; }
  /// The listening socket's fd, for wait() (Python: _listener._socket.fileno()).
  /// \throws OSError "listener is closed".
  int fileno() const;
  /// The time limit for a client's whole handshake, counted from its
  /// connection (default CONNECTION_TIMEOUT; nullopt waits forever, as CPython does).
  void set_handshake_timeout(std::optional<double> seconds) { handshake_timeout_ = seconds; }

 private:
  os::Fd socket_;
  std::string family_;
  Address address_;
  std::optional<Address> last_accepted_;
  std::optional<Bytes> authkey_;
  std::optional<double> handshake_timeout_ = CONNECTION_TIMEOUT;
  util::Finalize unlink_;  // Python: self._unlink
};

/// Python: Client(address, family=None, authkey=None): connect (blocking) and,
/// when an authkey is given, answer_challenge then deliver_challenge.
/// \throws ValueError for a bad family; OSError from socket/connect
///   (ECONNREFUSED, ENOENT...); AuthenticationError on a key mismatch.
Connection Client(const Address& address, std::optional<std::string> family = std::nullopt,
                  std::optional<Bytes> authkey = std::nullopt);

// ------------------------------------------------------------------ authentication

/// Python: deliver_challenge(connection, authkey) — the side that checks.
/// Sends "#CHALLENGE#" + a message, expects the HMAC of it, answers #WELCOME#
/// or #FAILURE#.  `digest_name` chooses the challenge:
///  - "" (the default): CPython 3.11's: 20 random bytes, HMAC-MD5 expected.
///    Every CPython since 3.x answers it; the default for that reason.
///  - "sha256", "md5", "sha384", "sha3_256", "sha3_384": CPython 3.12's
///    "{name}" + 40 random bytes.  A 3.12+ peer answers "{name}" + HMAC; a 3.11
///    peer answers a bare HMAC-MD5, which is accepted as 3.12 accepts it.
/// The reply is checked in constant time.  `deadline`: see Connection::_recv_bytes_before.
/// \throws AuthenticationError "digest received was wrong" (after sending
///   #FAILURE#), or on an unsupported or malformed reply; OSError "bad message
///   length" for a reply above 256 bytes; ValueError for an unknown digest_name.
void deliver_challenge(Connection& connection, const Bytes& authkey,
                       std::string_view digest_name = "",
                       std::optional<double> deadline = std::nullopt);

/// Python: answer_challenge(connection, authkey) — the side that proves it
/// knows the key.  Answers whichever challenge arrives: a 3.11 one (20 random
/// bytes) with the raw HMAC-MD5, a 3.12 "{name}..." one with "{name}" +
/// HMAC-name over the whole message, prefix included (Python 3.12:
/// _create_response).
/// \throws AuthenticationError "digest sent was rejected" when the peer does not
///   answer #WELCOME#; "Protocol error, expected challenge: message=..." when it
///   does not send a challenge (3.11 raises AssertionError there); "challenge too
///   short: N bytes"; "unsupported message length, missing digest prefix, or
///   unsupported digest: message=..."; OSError "bad message length" above 256 bytes.
void answer_challenge(Connection& connection, const Bytes& authkey,
                      std::optional<double> deadline = std::nullopt);

/// The HMAC of `message` under `key` with the named digest ("md5", "sha256",
/// "sha384", "sha3_256", "sha3_384"), from OpenSSL's libcrypto.  Python:
/// hmac.new(key, message, name).digest().  \throws ValueError for another name.
std::string _hmac(std::string_view digest_name, std::string_view key, std::string_view message);

// ------------------------------------------------------------------ wait

/// One object wait() can watch: a Connection, a Listener (ready: a client waits
/// to be accepted), a process (ready: it has ended; its sentinel) or a raw fd.
/// It refers to the object, which must outlive the wait() call and its result.
class Waitable {
 public:
  Waitable(int fd) : object_(fd) {}                           // NOLINT: reads like Python
  Waitable(const Connection& c) : object_(&c) {}              // NOLINT
  Waitable(const Listener& l) : object_(&l) {}                // NOLINT
  Waitable(const BaseProcess& p) : object_(&p) {}             // NOLINT
  /// The fd polled: the connection's, the listener's, the process's sentinel.
  /// \throws what fileno()/sentinel() throw (a closed connection...).
  int fileno() const;
  /// The object, when it is of that kind; else nullptr / nullopt.
  const Connection* connection() const;
  const Listener* listener() const;        ///< see connection()
  const BaseProcess* process() const;      ///< see connection()
  std::optional<int> fd() const;           ///< see connection()
  /// Same object (same address, or same raw fd).
  friend bool operator==(const Waitable&, const Waitable&) = default;

 private:
  std::variant<int, const Connection*, const Listener*, const BaseProcess*> object_;
};

/// Python: connection.wait(object_list, timeout=None) (POSIX branch).
/// Wait until at least one object is ready (a message or EOF to read, a client
/// to accept, a process ended), or `timeout` seconds pass: forever for nullopt,
/// only a poll for <= 0.  Returns the ready ones in the order given; empty on
/// timeout.  A signal does not shorten the wait (PEP 475).
/// \throws OSError if poll() fails or a connection is closed.
std::vector<Waitable> wait(const std::vector<Waitable>& object_list,
                           std::optional<double> timeout = std::nullopt);

/// The same over raw fds, returning the ready fds (what popen_fork uses on a
/// sentinel).  \throws OSError if poll() fails, ValueError for a negative fd.
std::vector<int> wait(const std::vector<int>& object_list,
                      std::optional<double> timeout = std::nullopt);
/// The same for a braced list of fds, `wait({sentinel}, 1.0)`.  (This overload
/// is what makes such a call pick the fd form rather than the Waitable one.)
std::vector<int> wait(std::initializer_list<int> object_list,
                      std::optional<double> timeout = std::nullopt);

}  // namespace multiprocessing::connection

namespace multiprocessing {

/// A Connection as a Process arg (reduction.hpp's customization point).
/// Python pickles it as `rebuild_connection(DupFd(fd), readable, writable)`:
/// under spawn and forkserver the child inherits the fd; under fork it gets a
/// duplicate of the same fd.  The value keeps its own duplicate open while it
/// lives, so closing the Connection after making the Process is safe.  Take
/// it as `Connection&` in the target: a Connection cannot be copied.
template <>
struct Convert<connection::Connection> {
  static Object to_object(const connection::Connection& c);
  static connection::Connection from_object(const Object& obj);
};

}  // namespace multiprocessing
