// multiprocessing/reduction.cpp
// Mirrors the value side of CPython 3.11 Lib/multiprocessing/reduction.py; see
// reduction.hpp.  Python's repr() rules are reproduced so that a C++ program prints
// lists and dicts the way the Python lessons print them.
#include "multiprocessing/reduction.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "multiprocessing/context.hpp"
#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/forkserver.hpp"
#include "multiprocessing/popen_fork.hpp"
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/resource_sharer.hpp"

namespace multiprocessing {

namespace {

/// Python's choice of quotes for a str or bytes repr: ' unless the text holds a '
/// and no ".
char repr_quote(std::string_view text) {
  bool has_single = text.find('\'') != std::string_view::npos;
  bool has_double = text.find('"') != std::string_view::npos;
  return (has_single && !has_double) ? '"' : '\'';
}

/// `\xNN`, as Python writes an octet or a code point below 256 that is not printable.
void append_hex_escape(std::string& out, unsigned char c) {
  static constexpr char digits[] = "0123456789abcdef";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 15];
}

/// The escapes str and bytes reprs share: backslash, the quote, tab, newline and
/// carriage return after a backslash, and `\xNN` for the other ASCII controls.
/// \return false if `c` needs none of them.
bool append_ascii_escape(std::string& out, unsigned char c, char quote) {
  switch (c) {
    case '\\': out += "\\\\"; return true;
    case '\t': out += "\\t"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    default: break;
  }
  if (c == static_cast<unsigned char>(quote)) {
    out += '\\';
    out += quote;
    return true;
  }
  if (c < 0x20 || c == 0x7f) {
    append_hex_escape(out, c);
    return true;
  }
  return false;
}

}  // namespace

std::string id_repr(const void* address) {
  char text[32];
  std::snprintf(text, sizeof text, "%#llx",
                static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(address)));
  return text;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string float_repr(double d) {
  // Python: float_repr -> PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0):
  // the shortest round-tripping digits (David Gay's dtoa mode 0), which is what
  // std::to_chars without a precision gives; then Python's own layout rules.
  if (std::isnan(d)) return "nan";  // the sign of a NaN is not shown
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buffer[40];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d, std::chars_format::scientific);
  std::string_view scientific(buffer, static_cast<std::size_t>(end - buffer));  // "-1.25e+17"
  bool negative = scientific.front() == '-';
  std::size_t e = scientific.find('e');
  std::string digits;  // "125": the significant digits, the point removed
  for (char c : scientific.substr(negative ? 1 : 0, e - (negative ? 1 : 0))) {
    if (c != '.') digits += c;
  }
  int exponent = std::atoi(std::string(scientific.substr(e + 1)).c_str());  // accepts the '+'
  int decpt = exponent + 1;  // dtoa's "decimal point position": d = 0.digits * 10**decpt
  std::string out = negative ? "-" : "";
  auto n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    // Python (format_float_short): exponent form outside that window, "1e+16".
    out += digits[0];
    if (n > 1) out += "." + digits.substr(1);
    char exp_text[16];
    std::snprintf(exp_text, sizeof exp_text, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp_text;
  }
  if (decpt <= 0) return out + "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  if (decpt >= n) return out + digits + std::string(static_cast<std::size_t>(decpt - n), '0') + ".0";
  return out + digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
}

std::string bytes_repr(std::string_view octets) {
  // Python: bytes_repr (Objects/bytesobject.c).
  char quote = repr_quote(octets);
  std::string out = "b";
  out += quote;
  for (unsigned char c : octets) {
    if (append_ascii_escape(out, c, quote)) continue;
    if (c >= 0x80) {
      append_hex_escape(out, c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string str_repr(std::string_view text) {
  // Python: unicode_repr (Objects/unicodeobject.c), for UTF-8 text.
  char quote = repr_quote(text);
  std::string out(1, quote);
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (append_ascii_escape(out, c, quote)) continue;
    // U+0080..U+00BF are the two octets C2 xx in UTF-8, U+00C0..U+00FF are C3 xx.
    // Python shows U+0080..U+00A0 and U+00AD (soft hyphen) escaped: not printable.
    if (c == 0xc2 && i + 1 < text.size()) {
      auto next = static_cast<unsigned char>(text[i + 1]);
      if (next <= 0xa0 || next == 0xad) {
        append_hex_escape(out, next);
        ++i;
        continue;
      }
    }
    out += static_cast<char>(c);  // other UTF-8 text passes through as Python prints it
  }
  out += quote;
  return out;
}

std::string Object::type_name() const {
  static constexpr const char* names[] = {"NoneType", "bool",      "int",  "float",     "str",
                                          "bytes",    "list",      "tuple", "dict", "bytearray",
                                          "set",      "frozenset", "type", "object"};
  if (const Reduced* r = reduced()) return r->callable.qualname;
  return names[value_.index()];
}

namespace {

std::string repr_items(const std::vector<Object>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i].repr();
  return out;
}

std::string dotted(const Object::Global& g) { return g.module + "." + g.qualname; }

}  // namespace

std::string Object::repr() const {
  struct Printer {
    std::string operator()(None) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return float_repr(d); }
    std::string operator()(const std::string& s) const { return str_repr(s); }
    std::string operator()(const Bytes& b) const { return bytes_repr(b.data); }
    std::string operator()(const Bytearray& b) const {
      return "bytearray(" + bytes_repr(b.data) + ")";
    }
    std::string operator()(const List& l) const { return "[" + repr_items(l) + "]"; }
    std::string operator()(const Tuple& t) const {
      return "(" + repr_items(t.items) + (t.items.size() == 1 ? ",)" : ")");
    }
    std::string operator()(const Dict& d) const {
      std::string out = "{";
      for (std::size_t i = 0; i < d.size(); ++i) {
        out += (i ? ", " : "") + d[i].first.repr() + ": " + d[i].second.repr();
      }
      return out + "}";
    }
    std::string operator()(const Set& s) const {
      return s.empty() ? "set()" : "{" + repr_items(s.items()) + "}";
    }
    std::string operator()(const FrozenSet& s) const {
      return s.empty() ? "frozenset()" : "frozenset({" + repr_items(s.items()) + "})";
    }
    std::string operator()(const Box<Global>& g) const { return "<class '" + dotted(*g) + "'>"; }
    std::string operator()(const Box<Reduced>& boxed) const {
      const Reduced& r = *boxed;
      std::string out = dotted(r.callable);
      if (r.newobj) {
        out += ".__new__(" + dotted(r.callable) + (r.args.empty() ? "" : ", ") + repr_items(r.args) + ")";
      } else {
        out += "(" + repr_items(r.args) + ")";
      }
      if (!r.state.empty()) out += ".__setstate__(" + r.state.front().repr() + ")";
      return out;
    }
  };
  return std::visit(Printer{}, value_);
}

namespace {

template <class T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int compare_items(const std::vector<Object>& a, const std::vector<Object>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (int c = Object::compare(a[i], b[i])) return c;
  }
  return three_way(a.size(), b.size());
}

// IEEE 754 totalOrder on the bit patterns: -NaN < -inf < ... < -0 < +0 < ... < +inf < NaN.
int compare_doubles(double a, double b) {
  std::int64_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  // Flip the magnitude bits of negatives so that the integers order like the doubles.
  ia ^= static_cast<std::int64_t>(static_cast<std::uint64_t>(ia >> 63) >> 1);
  ib ^= static_cast<std::int64_t>(static_cast<std::uint64_t>(ib >> 63) >> 1);
  return three_way(ia, ib);
}

}  // namespace

int Object::compare(const Object& a, const Object& b) {
  if (a.value_.index() != b.value_.index()) return three_way(a.value_.index(), b.value_.index());
  struct Comparer {
    const Variant& other;
    int operator()(None) const { return 0; }
    int operator()(bool v) const { return three_way(v, std::get<bool>(other)); }
    int operator()(std::int64_t v) const { return three_way(v, std::get<std::int64_t>(other)); }
    int operator()(double v) const { return compare_doubles(v, std::get<double>(other)); }
    int operator()(const std::string& v) const { return v.compare(std::get<std::string>(other)); }
    int operator()(const Bytes& v) const { return v.data.compare(std::get<Bytes>(other).data); }
    int operator()(const Bytearray& v) const {
      return v.data.compare(std::get<Bytearray>(other).data);
    }
    int operator()(const List& v) const { return compare_items(v, std::get<List>(other)); }
    int operator()(const Tuple& v) const {
      return compare_items(v.items, std::get<Tuple>(other).items);
    }
    int operator()(const Dict& v) const {
      const Dict& w = std::get<Dict>(other);
      for (std::size_t i = 0; i < v.size() && i < w.size(); ++i) {
        if (int c = compare(v[i].first, w[i].first)) return c;
        if (int c = compare(v[i].second, w[i].second)) return c;
      }
      return three_way(v.size(), w.size());
    }
    int operator()(const Set& v) const { return compare_items(v.items(), std::get<Set>(other).items()); }
    int operator()(const FrozenSet& v) const {
      return compare_items(v.items(), std::get<FrozenSet>(other).items());
    }
    int operator()(const Box<Global>& v) const { return compare_globals(*v, *std::get<Box<Global>>(other)); }
    static int compare_globals(const Global& v, const Global& w) {
      if (int c = v.module.compare(w.module)) return c;
      return v.qualname.compare(w.qualname);
    }
    int operator()(const Box<Reduced>& boxed) const {
      const Reduced& v = *boxed;
      const Reduced& w = *std::get<Box<Reduced>>(other);
      if (int c = compare_globals(v.callable, w.callable)) return c;
      if (int c = three_way(v.newobj, w.newobj)) return c;
      if (int c = compare_items(v.args, w.args)) return c;
      return compare_items(v.state, w.state);
    }
  };
  int c = std::visit(Comparer{b.value_}, a.value_);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

namespace {
bool less(const Object& a, const Object& b) { return Object::compare(a, b) < 0; }
}  // namespace

Object::Set::Set(std::vector<Object> items) : items_(std::move(items)) {
  std::sort(items_.begin(), items_.end(), less);
  items_.erase(std::unique(items_.begin(), items_.end(),
                           [](const Object& a, const Object& b) { return compare(a, b) == 0; }),
               items_.end());
}

Object::Set::Set(std::initializer_list<Object> items) : Set(std::vector<Object>(items)) {}

bool Object::Set::insert(Object item) {
  auto at = std::lower_bound(items_.begin(), items_.end(), item, less);
  if (at != items_.end() && compare(*at, item) == 0) return false;
  items_.insert(at, std::move(item));
  return true;
}

bool Object::Set::contains(const Object& item) const {
  return std::binary_search(items_.begin(), items_.end(), item, less);
}

void Object::type_mismatch(const char* expected) const {
  throw TypeError(std::string("expected ") + expected + ", got " + type_name());
}

bool Convert<bool>::from_object(const Object& o) {
  if (const bool* b = std::get_if<bool>(&o.variant())) return *b;
  o.type_mismatch("bool");
}

std::int64_t Convert<std::int64_t>::from_object(const Object& o) {
  if (const std::int64_t* i = std::get_if<std::int64_t>(&o.variant())) return *i;
  // Python's bool is an int subclass: True counts as 1 wherever an int is expected.
  if (const bool* b = std::get_if<bool>(&o.variant())) return *b ? 1 : 0;
  o.type_mismatch("int");
}

std::string Convert<std::string>::from_object(const Object& o) {
  if (const std::string* s = std::get_if<std::string>(&o.variant())) return *s;
  o.type_mismatch("str");
}

Bytes Convert<Bytes>::from_object(const Object& o) {
  if (const Bytes* b = std::get_if<Bytes>(&o.variant())) return *b;
  o.type_mismatch("bytes");
}

Bytearray Convert<Bytearray>::from_object(const Object& o) {
  if (const Bytearray* b = std::get_if<Bytearray>(&o.variant())) return *b;
  o.type_mismatch("bytearray");
}

None Convert<None>::from_object(const Object& o) {
  if (o.is_none()) return None{};
  o.type_mismatch("None");
}

// ------------------------------------------------------------------ fds

namespace reduction {

void sendfds(int sock, const std::vector<int>& fds) {
  // The fds travel as ancillary data (a control message of type SCM_RIGHTS);
  // the kernel installs duplicates in the receiver.  A message must carry at
  // least one byte of ordinary data: Python sends len(fds) % 256.
  char count = static_cast<char>(fds.size() % 256);
  iovec iov{&count, 1};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    // MSG_NOSIGNAL: a vanished peer is EPIPE, not a SIGPIPE that kills us.
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) raise_os_error("sendmsg", errno);
}

std::size_t recvfds(int sock, std::span<int> out) {
  char count = 0;
  iovec iov{&count, 1};
  // Room for exactly out.size() fds: the kernel sets MSG_CTRUNC, and closes
  // the rest, if more were sent.
  const std::size_t room = CMSG_SPACE(sizeof(int) * out.size());
  alignas(cmsghdr) char on_stack[CMSG_SPACE(sizeof(int) * kRecvfdsOnStack)];
  std::vector<char> on_heap;
  char* control = on_stack;
  if (room > sizeof on_stack) {
    on_heap.resize(room);
    control = on_heap.data();
  }
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = room;
  ssize_t n;
  do {
    // MSG_CMSG_CLOEXEC: the received fds are close-on-exec from the start,
    // like every fd this library opens.
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) raise_os_error("recvmsg", errno);
  std::size_t got = 0;
  int items = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    ++items;
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      k = std::min(k, out.size() - got);  // the room above holds no more
      std::memcpy(out.data() + got, CMSG_DATA(c), k * sizeof(int));
      got += k;
    }
  }
  auto close_all = [&] {
    for (std::size_t i = 0; i < got; ++i) ::close(out[i]);
  };
  if (n == 0 && items == 0) throw EOFError("");
  if (items != 1) {
    close_all();
    throw RuntimeError("received " + std::to_string(items) + " items of ancdata");
  }
  if (got == 0) throw RuntimeError("Invalid data received");
  if (msg.msg_flags & MSG_CTRUNC) {
    close_all();
    throw RuntimeError("Invalid data received (more fds than asked for)");
  }
  if (got % 256 != static_cast<unsigned char>(count)) {
    close_all();
    throw AssertionError("Len is " + std::to_string(got) + " but msg[0] is " +
                         std::to_string(static_cast<unsigned char>(count)));
  }
  return got;
}

std::vector<int> recvfds(int sock, std::size_t size) {
  std::vector<int> fds(size);
  fds.resize(recvfds(sock, std::span<int>(fds)));
  return fds;
}

Object DupFd(int fd) {
  popen_fork::Popen* popen = get_spawning_popen();
  if (popen != nullptr) return popen->DupFd(popen->duplicate_for_child(fd));
  // Not starting a child: lend the fd through the resource sharer's thread.
  return resource_sharer::DupFd(fd);
}

int _detach_dup_fd(const Object& dup_fd) {
  const Object::Reduced* r = dup_fd.reduced();
  if (r != nullptr && r->callable.module == "multiprocessing.resource_sharer") {
    return resource_sharer::detach(dup_fd);
  }
  if (r == nullptr || r->callable.qualname != "_DupFd" || r->args.size() != 1) {
    throw UnpicklingError("expected a DupFd, got " + dup_fd.repr());
  }
  int handle = static_cast<int>(r->args[0].as<std::int64_t>());
  int fd;
  if (r->callable.module == "multiprocessing.popen_spawn_posix") {
    fd = handle;  // inherited under this number
  } else if (r->callable.module == "multiprocessing.popen_forkserver") {
    const auto& inherited = forkserver::get_inherited_fds();
    if (!inherited || handle < 0 || static_cast<std::size_t>(handle) >= inherited->size()) {
      throw UnpicklingError("DupFd index " + std::to_string(handle) + " has no inherited fd");
    }
    fd = (*inherited)[static_cast<std::size_t>(handle)];
  } else {
    throw UnpicklingError("expected a DupFd, got " + dup_fd.repr());
  }
  // Inherited across exec, so without FD_CLOEXEC: give it the flag every fd
  // of this library has.  Checked: failing means the fd was not inherited.
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) raise_os_error("fcntl", errno);
  return fd;
}

namespace {
// The unpickler may name these (ForkingPickler's allow-list).
const bool dup_fd_globals_registered = [] {
  ForkingPickler::register_global("multiprocessing.popen_spawn_posix", "_DupFd");
  ForkingPickler::register_global("multiprocessing.popen_forkserver", "_DupFd");
  return true;
}();
}  // namespace

// ------------------------------------------------------------------ exceptions

namespace {
// Each exception class the port can rebuild: its Python module, and how to
// throw its C++ twin with a message.
using Raise = void (*)(const std::string& message, const std::string& cause);
struct ExceptionClass {
  const char* module;
  Raise raise;  // never returns
};

template <class E>
[[noreturn]] void raise_as(const std::string& message, const std::string& cause) {
  E e(message);
  if (!cause.empty()) e.set_remote_traceback(cause);
  throw e;
}

const std::map<std::string, ExceptionClass>& exception_classes() {
  static const std::map<std::string, ExceptionClass> classes = {
      {"Exception", {"builtins", &raise_as<Exception>}},
      {"ValueError", {"builtins", &raise_as<ValueError>}},
      {"TypeError", {"builtins", &raise_as<TypeError>}},
      {"IndexError", {"builtins", &raise_as<IndexError>}},
      {"KeyError", {"builtins", &raise_as<KeyError>}},
      {"AttributeError", {"builtins", &raise_as<AttributeError>}},
      {"StopIteration", {"builtins", &raise_as<StopIteration>}},
      {"ZeroDivisionError", {"builtins", &raise_as<ZeroDivisionError>}},
      {"OverflowError", {"builtins", &raise_as<OverflowError>}},
      {"RuntimeError", {"builtins", &raise_as<RuntimeError>}},
      {"NotImplementedError", {"builtins", &raise_as<NotImplementedError>}},
      {"AssertionError", {"builtins", &raise_as<AssertionError>}},
      {"EOFError", {"builtins", &raise_as<EOFError>}},
      {"OSError", {"builtins", &raise_as<OSError>}},
      {"ChildProcessError", {"builtins", &raise_as<ChildProcessError>}},
      {"ProcessLookupError", {"builtins", &raise_as<ProcessLookupError>}},
      {"FileExistsError", {"builtins", &raise_as<FileExistsError>}},
      {"FileNotFoundError", {"builtins", &raise_as<FileNotFoundError>}},
      {"BlockingIOError", {"builtins", &raise_as<BlockingIOError>}},
      {"ConnectionError", {"builtins", &raise_as<ConnectionError>}},
      {"BrokenPipeError", {"builtins", &raise_as<BrokenPipeError>}},
      {"ConnectionAbortedError", {"builtins", &raise_as<ConnectionAbortedError>}},
      {"ConnectionRefusedError", {"builtins", &raise_as<ConnectionRefusedError>}},
      {"ConnectionResetError", {"builtins", &raise_as<ConnectionResetError>}},
      {"InterruptedError", {"builtins", &raise_as<InterruptedError>}},
      {"IsADirectoryError", {"builtins", &raise_as<IsADirectoryError>}},
      {"NotADirectoryError", {"builtins", &raise_as<NotADirectoryError>}},
      {"PermissionError", {"builtins", &raise_as<PermissionError>}},
      {"ProcessError", {"multiprocessing", &raise_as<ProcessError>}},
      {"TimeoutError", {"multiprocessing", &raise_as<TimeoutError>}},
      {"AuthenticationError", {"multiprocessing", &raise_as<AuthenticationError>}},
      {"BrokenBarrierError", {"threading", &raise_as<BrokenBarrierError>}},
      {"Empty", {"queue", &raise_as<queues::Empty>}},
      {"Full", {"queue", &raise_as<queues::Full>}},
      {"PicklingError", {"pickle", &raise_as<PicklingError>}},
      {"UnpicklingError", {"pickle", &raise_as<UnpicklingError>}},
      {"MaybeEncodingError", {"multiprocessing.pool", &raise_as<pool::MaybeEncodingError>}},
      {"WorkerLostError", {"multiprocessing.pool", &raise_as<pool::WorkerLostError>}},
  };
  return classes;
}

// The unpickler may name these classes (ForkingPickler's allow-list).
const bool exception_globals_registered = [] {
  for (const auto& [name, cls] : exception_classes()) {
    ForkingPickler::register_global(cls.module, name);
  }
  return true;
}();
}  // namespace

Object _reduce_exception(const std::exception& e) {
  std::string type = exception_type_name(e);
  auto it = exception_classes().find(type);
  if (it != exception_classes().end()) {
    return Object::Reduced{{it->second.module, type}, {std::string(e.what())}};
  }
  // A class Python has no name for: Exception(message), the C++ class kept as
  // an attribute (Python: exc.__dict__, pickled as the BUILD state).
  return Object::Reduced{{"builtins", "Exception"},
                         {std::string(e.what())},
                         false,
                         {Object(Object::Dict{{"cpp_type", type}})}};
}

void _raise_exception(const Object& exc, const std::string& remote_traceback) {
  const Object::Reduced* r = exc.reduced();
  if (r == nullptr) throw ValueError("expected a pickled exception, got " + exc.repr());
  std::string message;
  if (r->args.size() == 1) {
    if (const auto* text = std::get_if<std::string>(&r->args[0].variant())) message = *text;
    else message = r->args[0].repr();
  } else if (!r->args.empty()) {
    message = Object(Object::Tuple{r->args}).repr();  // Python's str() of a multi-arg exception
  }
  std::string type = r->callable.qualname;
  if (!r->state.empty()) {
    if (const auto* dict = std::get_if<Object::Dict>(&r->state[0].variant())) {
      for (const auto& [key, value] : *dict) {
        if (key == Object("cpp_type")) type = value.as<std::string>();
      }
    }
  }
  auto it = exception_classes().find(type);
  if (it != exception_classes().end()) it->second.raise(message, remote_traceback);  // throws
  RemoteException e(type, message);
  if (!remote_traceback.empty()) e.set_remote_traceback(remote_traceback);
  throw e;
}

void send_handle(int sock, int handle) { sendfds(sock, {handle}); }

int recv_handle(int sock) { return recvfds(sock, 1).at(0); }

}  // namespace reduction

}  // namespace multiprocessing
