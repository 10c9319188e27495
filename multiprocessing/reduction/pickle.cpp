// multiprocessing/reduction/pickle.cpp
// Mirrors CPython 3.11 Lib/pickle.py (Pickler.save_*, _Unpickler.load_*) and
// Lib/pickletools.py (dis), with the framing and memo order of Modules/_pickle.c.
// See pickle.hpp for what is written, what is read, and the bounds on hostile input.
#include "multiprocessing/reduction/pickle.hpp"
#include "multiprocessing/util.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <forward_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace multiprocessing::reduction {

namespace {

// ---------------------------------------------------------------- opcodes
// The names pickle.py gives them; the byte values are the protocol.
namespace op {
constexpr char MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F',
               INT = 'I', BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N',
               PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T',
               SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b',
               GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h',
               INST = 'i', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p',
               BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')',
               SETITEMS = 'u', BINFLOAT = 'G',
               // protocol 2
               PROTO = '\x80', NEWOBJ = '\x81', EXT1 = '\x82', EXT2 = '\x83', EXT4 = '\x84',
               TUPLE1 = '\x85', TUPLE2 = '\x86', TUPLE3 = '\x87', NEWTRUE = '\x88',
               NEWFALSE = '\x89', LONG1 = '\x8a', LONG4 = '\x8b',
               // protocol 3
               BINBYTES = 'B', SHORT_BINBYTES = 'C',
               // protocol 4
               SHORT_BINUNICODE = '\x8c', BINUNICODE8 = '\x8d', BINBYTES8 = '\x8e',
               EMPTY_SET = '\x8f', ADDITEMS = '\x90', FROZENSET = '\x91', NEWOBJ_EX = '\x92',
               STACK_GLOBAL = '\x93', MEMOIZE = '\x94', FRAME = '\x95',
               // protocol 5
               BYTEARRAY8 = '\x96', NEXT_BUFFER = '\x97', READONLY_BUFFER = '\x98';
}  // namespace op

// _pickle.c: a frame is committed once it holds this much; smaller frames than
// kFrameSizeMin are written without a FRAME header.
constexpr std::size_t kFrameSizeTarget = 64 * 1024;
constexpr std::size_t kFrameSizeMin = 4;
constexpr std::size_t kFrameHeaderSize = 9;
// pickle.py: Pickler._BATCHSIZE, items per APPENDS / SETITEMS / ADDITEMS.
constexpr std::size_t kBatchSize = 1000;

void put_le(std::string& out, std::uint64_t v, int nbytes) {
  for (int i = 0; i < nbytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// The same into a buffer: `nbytes` bytes from `at` on.
void put_le_at(char* at, std::uint64_t v, int nbytes) {
  for (int i = 0; i < nbytes; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

bool fits_int32(std::int64_t x) { return x >= INT32_MIN && x <= INT32_MAX; }

// Python: save_long, for an int that fits_int32: the shortest of BININT1
// (0..255), BININT2 (0..65535) and BININT (4 bytes, signed), written at `w`.
// Returns the bytes written: 2, 3 or 5; 0 (nothing written) for an int that
// does not fit in 32 bits.  (Pickler::save_int_block spells the same out in
// its loop, which is faster so.)
[[gnu::always_inline]] inline std::size_t put_int32(char* w, std::int64_t x) {
  auto u = static_cast<std::uint32_t>(x);
  if (static_cast<std::uint64_t>(x) <= 0xff) {
    w[0] = op::BININT1;
    w[1] = static_cast<char>(u);
    return 2;
  }
  if (static_cast<std::uint64_t>(x) <= 0xffff) {
    w[0] = op::BININT2;
    w[1] = static_cast<char>(u);
    w[2] = static_cast<char>(u >> 8);
    return 3;
  }
  if (!fits_int32(x)) return 0;
  w[0] = op::BININT;
  w[1] = static_cast<char>(u);
  w[2] = static_cast<char>(u >> 8);
  w[3] = static_cast<char>(u >> 16);
  w[4] = static_cast<char>(u >> 24);
  return 5;
}

std::uint64_t get_le(std::string_view in, int nbytes) {
  std::uint64_t v = 0;
  for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// pickle.encode_long: the shortest little-endian two's complement bytes of x.
std::string encode_long(std::int64_t x) {
  std::string out;
  put_le(out, static_cast<std::uint64_t>(x), 8);
  // Drop top bytes that only repeat the sign of the byte below.
  while (out.size() > 1) {
    auto top = static_cast<unsigned char>(out.back());
    auto next = static_cast<unsigned char>(out[out.size() - 2]);
    if ((top == 0x00 && !(next & 0x80)) || (top == 0xff && (next & 0x80))) out.pop_back();
    else break;
  }
  return out;
}

// pickle.decode_long, for values that fit in 64 bits.
std::int64_t decode_long(std::string_view data) {
  if (data.empty()) return 0;
  bool negative = static_cast<unsigned char>(data.back()) & 0x80;
  // Bytes beyond the eighth must only repeat the sign.
  for (std::size_t i = 8; i < data.size(); ++i) {
    if (static_cast<unsigned char>(data[i]) != (negative ? 0xff : 0x00)) {
      throw UnpicklingError("int of " + std::to_string(data.size()) +
                            " bytes does not fit in 64 bits");
    }
  }
  std::size_t n = std::min<std::size_t>(data.size(), 8);
  std::uint64_t v = get_le(data, static_cast<int>(n));
  if (n < 8 && negative) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
  if (data.size() > 8 && (static_cast<std::int64_t>(v) < 0) != negative) {
    throw UnpicklingError("int of " + std::to_string(data.size()) +
                          " bytes does not fit in 64 bits");
  }
  return static_cast<std::int64_t>(v);
}

// UTF-8 text -> latin-1 octets (Python: str.encode('latin1')).
std::string utf8_to_latin1(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xc0) == 0x80) {
      out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3f));
      ++i;
    } else {
      throw UnpicklingError("_codecs.encode: text is not latin-1");
    }
  }
  return out;
}

// latin-1 octets -> UTF-8 text (Python: bytes.decode('latin1')).
std::string latin1_to_utf8(const std::string& octets) {
  std::string out;
  for (unsigned char c : octets) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// ---------------------------------------------------------------- the allow-list
// Python: what Unpickler.find_class may import.  The built-ins are evaluated
// natively by the unpickler; the rest are registered by the package's modules.
struct Registry {
  std::mutex lock;
  std::map<std::pair<std::string, std::string>, ForkingPickler::Rebuild> globals;
};

Registry& registry() {
  // A function-local static: constructed on first use, thread-safe.  Never
  // destroyed: a fork() at exit may still take its lock.
  static Registry* r = [] {
    auto* created = new Registry;
    // A forked child unpickles with this allow-list while another thread of
    // the parent may have been registering a global at the instant of
    // fork(): fork() holds the lock, whose sections only read or change the map.
    util::_hold_across_fork(created->lock);
    return created;
  }();
  return *r;
}
// Made while the program starts, not on first use (see util::_hold_across_fork).
[[maybe_unused]] const bool registry_made_at_start = (registry(), true);

bool is_native(const std::string& module, const std::string& qualname) {
  if (module == "_codecs") return qualname == "encode";
  return module == "builtins" && (qualname == "set" || qualname == "frozenset" ||
                                  qualname == "bytearray" || qualname == "bytes" ||
                                  qualname == "list");
}

// A value that holds other values (what counts towards kMaxDepth).
bool is_container(const Object& obj) {
  const auto& v = obj.variant();
  return std::holds_alternative<Object::List>(v) || std::holds_alternative<Object::Tuple>(v) ||
         std::holds_alternative<Object::Dict>(v) || std::holds_alternative<Object::Set>(v) ||
         std::holds_alternative<Object::FrozenSet>(v) || obj.reduced() != nullptr;
}

// ================================================================ Pickler
// The values CPython's pickler finds again in its memo because they are the
// same object (see pickle.hpp): a str, a bytes, a global, the one-character
// str of a latin-1 octet; each with its memo index.  A pickle holds few of
// them (a manager's request two, its reply one), so the first kInline are kept
// in an array and searched in order, allocating nothing; past that, a hash map
// over copies of the keys finds them.  The keys in the array are views: what
// the Pickler saves must outlive it (the value given to dump(), or one it keeps).
class IdentityMemo {
 public:
  enum class Kind : char { Str, Bytes, Global, Latin1Char };
  struct Entry {
    Kind kind;
    std::string_view a, b;
    std::uint64_t index;
  };

  // The memo index of (kind, a, b), or nullopt.  `b` is a global's qualname.
  std::optional<std::uint64_t> find(Kind kind, std::string_view a, std::string_view b = {}) const {
    if (count_ <= kInline) {
      for (std::size_t i = 0; i < count_; ++i) {
        const Entry& e = inline_[i];
        if (e.kind == kind && e.a == a && e.b == b) return e.index;
      }
      return std::nullopt;
    }
    auto it = more_.find(key(kind, a, b));
    if (it == more_.end()) return std::nullopt;
    return it->second;
  }

  void add(Kind kind, std::string_view a, std::string_view b, std::uint64_t index) {
    if (count_ < kInline) {
      inline_[count_++] = Entry{kind, a, b, index};
      return;
    }
    if (count_ == kInline) {  // the array is full: from now on the map holds every entry
      for (const Entry& e : inline_) more_.emplace(key(e.kind, e.a, e.b), e.index);
    }
    more_.emplace(key(kind, a, b), index);
    ++count_;
  }

 private:
  // The map's key: the kind, the length of `a` (so that no two pairs give the
  // same text), `a`, `b`.
  static std::string key(Kind kind, std::string_view a, std::string_view b) {
    std::string k(1, static_cast<char>(kind));
    k += std::to_string(a.size());
    k += ':';
    k += a;
    k += b;
    return k;
  }

  static constexpr std::size_t kInline = 8;
  std::array<Entry, kInline> inline_;
  std::size_t count_ = 0;
  std::unordered_map<std::string, std::uint64_t> more_;
};

// Python: pickle.Pickler (save_* methods), laid out byte for byte as _pickle.c.
class Pickler {
 public:
  // The pickle is appended to `out`, after what it already holds (a
  // Connection's frame header, an earlier pickle of reduction::dump).
  Pickler(int protocol, std::string& out) : proto_(protocol), out_(out) {}

  // Python: Pickler.dump.
  void dump(const Object& obj) {
    if (proto_ >= 2) {
      out_ += op::PROTO;
      out_ += static_cast<char>(proto_);
    }
    framing_ = proto_ >= 4;  // PROTO itself stays outside the first frame
    save(obj, 0);
    write(op::STOP);
    commit_frame();
  }

  // dumps_with_items / dumps_with_ints (pickle.hpp): dump(obj), with
  // int_run_placeholder(true) written as the tuple of `items`, or
  // int_run_placeholder(false) as the list of `ints`.
  void dump_with_run(const Object& obj, const Object* items, const std::int64_t* ints, std::size_t n) {
    out_.reserve(out_.size() + 5 * n + 256);  // an int of 32 bits takes 5 bytes at most
    run_items_ = items;
    run_ints_ = ints;
    run_n_ = n;
    dump(obj);
  }

 private:
  // -------- output and framing (_pickle.c: _Pickler_Write, _Pickler_CommitFrame)
  void write(std::string_view data) {
    if (framing_ && frame_start_ == kNoFrame) start_frame();
    out_.append(data);
  }
  // Inlined at every call: a pickle is mostly one-byte opcodes, and a call
  // per byte cost as much again as the push_back itself (about 20
  // instructions of the 40 each took).
  [[gnu::always_inline]] void write(char opcode) {
    if (framing_ && frame_start_ == kNoFrame) start_frame();
    out_.push_back(opcode);
  }
  void start_frame() {
    frame_start_ = out_.size();
    out_.append(kFrameHeaderSize, '\0');  // filled in by commit_frame
  }

  void commit_frame() {
    if (!framing_ || frame_start_ == kNoFrame) return;
    std::size_t frame_len = out_.size() - frame_start_ - kFrameHeaderSize;
    if (frame_len >= kFrameSizeMin) {
      out_[frame_start_] = op::FRAME;  // the header reserved by start_frame, in place
      put_le_at(&out_[frame_start_ + 1], frame_len, 8);
    } else {
      out_.erase(frame_start_, kFrameHeaderSize);  // too small to be worth a header
    }
    frame_start_ = kNoFrame;
  }

  // _pickle.c: _Pickler_OpcodeBoundary, after each object saved.
  void opcode_boundary() {
    if (framing_ && frame_start_ != kNoFrame &&
        out_.size() - frame_start_ - kFrameHeaderSize >= kFrameSizeTarget) {
      commit_frame();
    }
  }

  // _pickle.c: _Pickler_write_bytes.  A payload of a frame's size or more goes
  // outside any frame, so that the reader can take it without copying.
  void write_large(std::string_view header, std::string_view payload) {
    bool bypass = payload.size() >= kFrameSizeTarget;
    bool framing = framing_;
    if (bypass) {
      commit_frame();
      framing_ = false;
    }
    write(header);
    write(payload);
    framing_ = framing;
  }

  // -------- memo (Pickler.memoize, Pickler.get)
  std::uint64_t memoize() {
    std::uint64_t index = memo_size_++;
    if (proto_ >= 4) {
      write(op::MEMOIZE);
      return index;
    }
    write_indexed(op::BINPUT, op::LONG_BINPUT, index);
    return index;
  }

  void get(std::uint64_t index) { write_indexed(op::BINGET, op::LONG_BINGET, index); }

  // The short opcode with a 1-byte index, or the long one with 4 bytes.
  void write_indexed(char short_op, char long_op, std::uint64_t index) {
    char code[5];
    int width = index < 256 ? 1 : 4;
    code[0] = index < 256 ? short_op : long_op;
    put_le_at(code + 1, index, width);
    write(std::string_view(code, 1 + static_cast<std::size_t>(width)));
  }

  // -------- Pickler.save: dispatch on the type
  void save(const Object& obj, int depth) {
    if (depth >= kMaxDepth && is_container(obj)) {
      throw PicklingError("maximum recursion depth exceeded while pickling an object");
    }
    std::visit([&](const auto& value) { save_value(value, depth); }, obj.variant());
    opcode_boundary();
  }

  void save_value(None, int) { write(op::NONE); }

  void save_value(bool b, int) { write(b ? op::NEWTRUE : op::NEWFALSE); }

  // [pickle-save-items]
  // The items of a list's batch or of a long tuple, in order.  A run of ints
  // of 32 bits among them (a Pool's chunk, its results) goes through
  // save_int_block, a block at a time; anything else through save().
  // (Also for a run of plain ints, written as a list by save_run.)
  static const std::int64_t* int_of(const Object& item) { return std::get_if<std::int64_t>(&item.variant()); }
  static const std::int64_t* int_of(const std::int64_t& item) { return &item; }
  void save_item(const Object& item, int depth) { save(item, depth); }
  void save_item(std::int64_t item, int depth) {
    save_value(item, depth);
    opcode_boundary();
  }
  template <class Item>
  void save_items(const Item* items, std::size_t n, int depth) {
    std::size_t i = 0;
    while (i < n) {
      const std::int64_t* x = int_of(items[i]);
      if (x != nullptr && fits_int32(*x)) {
        i = save_int_block(items, i, n);
      } else {
        save_item(items[i], depth);
        ++i;
      }
    }
  }

  // The ints of 32 bits from items[i] on, as save_value(std::int64_t) writes
  // each (BININT1, BININT2 or BININT: 5 bytes at most), encoded into a stack
  // buffer and appended at once.  The block is cut so that the frame cannot
  // reach kFrameSizeTarget inside it: opcode_boundary() after the block then
  // ends the frame after the same int as after each int (the frame's last
  // few bytes go one int per block).  No dispatch on the type and no frame
  // check per int: about ten instructions each.  Returns where it stopped:
  // n, the end of the block, or the first item that is not such an int.
  template <class Item>
  std::size_t save_int_block(const Item* items, std::size_t i, std::size_t n) {
    constexpr std::size_t kMaxInt = 5;
    char buf[256 * kMaxInt];
    std::size_t count = std::min(n - i, sizeof buf / kMaxInt);
    if (framing_) {
      if (frame_start_ == kNoFrame) start_frame();
      // (A MARK just written may have taken the frame to the target: then
      // one int, after which opcode_boundary() ends the frame.)
      std::size_t framed = out_.size() - frame_start_ - kFrameHeaderSize;
      std::size_t room = framed < kFrameSizeTarget ? kFrameSizeTarget - framed : 0;
      count = std::min(count, std::max<std::size_t>(1, room > 0 ? (room - 1) / kMaxInt : 0));
    }
    char* w = buf;
    std::size_t stop = i + count;
    for (; i < stop; ++i) {
      const std::int64_t* x = int_of(items[i]);
      if (x == nullptr) break;
      // put_int32's encoding, spelled out here: through put_int32 this loop
      // took one to two instructions more per int (bench_pool's BM_Lib_Map).
      std::int64_t v = *x;
      auto u = static_cast<std::uint32_t>(v);
      if (static_cast<std::uint64_t>(v) <= 0xff) {
        w[0] = op::BININT1;
        w[1] = static_cast<char>(u);
        w += 2;
      } else if (static_cast<std::uint64_t>(v) <= 0xffff) {
        w[0] = op::BININT2;
        w[1] = static_cast<char>(u);
        w[2] = static_cast<char>(u >> 8);
        w += 3;
      } else if (fits_int32(v)) {
        w[0] = op::BININT;
        w[1] = static_cast<char>(u);
        w[2] = static_cast<char>(u >> 8);
        w[3] = static_cast<char>(u >> 16);
        w[4] = static_cast<char>(u >> 24);
        w += 5;
      } else {
        break;
      }
    }
    out_.append(buf, static_cast<std::size_t>(w - buf));
    opcode_boundary();
    return i;
  }
  // [pickle-save-items]

  // Python: save_long.
  void save_value(std::int64_t x, int) {
    // The common cases in a stack buffer: a pool maps lists of ints.
    char buf[5];
    if (std::size_t written = put_int32(buf, x)) return write(std::string_view(buf, written));
    std::string code;
    {
      std::string encoded = encode_long(x);
      code += op::LONG1;
      code += static_cast<char>(encoded.size());
      code += encoded;
    }
    write(code);
  }

  // Python: save_float (8-byte big-endian IEEE 754).
  void save_value(double d, int) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    std::string code(1, op::BINFLOAT);
    for (int i = 7; i >= 0; --i) code += static_cast<char>((bits >> (8 * i)) & 0xff);
    write(code);
  }

  // Python: save_str.
  void save_value(const std::string& s, int) { save_text(s); }

  // A str found in the memo is a BINGET, as CPython's memo finds the same object.
  void save_text(std::string_view s) {
    if (auto index = memo_.find(IdentityMemo::Kind::Str, s)) return get(*index);
    memo_.add(IdentityMemo::Kind::Str, s, {}, save_str(s));
  }

  // Writes a str and memoizes it; returns its memo index.
  std::uint64_t save_str(std::string_view s) {
    char header[9];
    std::size_t header_size;
    if (s.size() < 256 && proto_ >= 4) {
      header[0] = op::SHORT_BINUNICODE;
      header_size = 2;
    } else if (s.size() > 0xffffffffu) {
      if (proto_ < 4) throw PicklingError("serializing a string larger than 4 GiB requires pickle protocol 4 or higher");
      header[0] = op::BINUNICODE8;
      header_size = 9;
    } else {
      header[0] = op::BINUNICODE;
      header_size = 5;
    }
    put_le_at(header + 1, s.size(), static_cast<int>(header_size - 1));
    write_large(std::string_view(header, header_size), s);
    return memoize();
  }

  // Python: save_bytes.
  void save_value(const Bytes& b, int depth) {
    if (auto index = memo_.find(IdentityMemo::Kind::Bytes, b.data)) return get(*index);
    memo_.add(IdentityMemo::Kind::Bytes, b.data, {}, save_bytes(b.data, depth));
  }

  // Writes a bytes object and memoizes it; returns its memo index.
  std::uint64_t save_bytes(const std::string& octets, int depth) {
    if (proto_ < 3) {
      // Protocol 2 has no bytes opcode: CPython writes a call that rebuilds them
      // from latin-1 text, which Python 2 and 3 both read back.
      if (octets.empty()) {
        save_reduce(*keep(Object::Reduced{{"builtins", "bytes"}, {}, false, {}}).reduced(), depth);
      } else {
        // As save_reduce(codecs.encode, (text, 'latin1')).  The text is a new str
        // object in CPython, never found in the memo, except a text of one
        // character: CPython keeps one shared str per latin-1 character.
        save_global("_codecs", "encode");
        std::string text = latin1_to_utf8(octets);
        if (octets.size() != 1) {
          save_str(text);
        } else if (auto index = memo_.find(IdentityMemo::Kind::Latin1Char, latin1_char(octets[0]))) {
          get(*index);
        } else {
          memo_.add(IdentityMemo::Kind::Latin1Char, latin1_char(octets[0]), {}, save_str(text));
        }
        save_text("latin1");
        write(op::TUPLE2);
        memoize();
        write(op::REDUCE);
        memoize();
      }
      return memo_size_ - 1;  // the result was memoized last
    }
    std::string header;
    if (octets.size() < 256) {
      header += op::SHORT_BINBYTES;
      put_le(header, octets.size(), 1);
    } else if (octets.size() > 0xffffffffu) {
      if (proto_ < 4) throw PicklingError("serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher");
      header += op::BINBYTES8;
      put_le(header, octets.size(), 8);
    } else {
      header += op::BINBYTES;
      put_le(header, octets.size(), 4);
    }
    write_large(header, octets);
    return memoize();
  }

  // Python: save_bytearray (protocol 5), else bytearray.__reduce_ex__.
  void save_value(const Bytearray& b, int depth) {
    if (proto_ < 5) {
      // save_reduce(bytearray, (bytes(b),)), the bytes being a new object in
      // CPython, so never found in the memo; bytearray() when empty.
      save_global("builtins", "bytearray");
      if (b.data.empty()) {
        write(op::EMPTY_TUPLE);
      } else {
        save_bytes(b.data, depth + 1);
        write(op::TUPLE1);
        memoize();
      }
      write(op::REDUCE);
      memoize();
      return;
    }
    char header[9] = {op::BYTEARRAY8};
    put_le_at(header + 1, b.size(), 8);
    write_large(std::string_view(header, sizeof header), b.data);
    memoize();
  }

  // [pickle-save-list]
  // Python: save_list + _batch_appends.
  void save_value(const Object::List& list, int depth) {
    write(op::EMPTY_LIST);
    memoize();
    // _pickle.c (batch_list_exact): a list of one item is an APPEND; any other is
    // written in MARK ... APPENDS batches, even when the last batch holds one item.
    if (list.size() == 1) {
      save(list[0], depth + 1);
      write(op::APPEND);
      return;
    }
    for (std::size_t start = 0; start < list.size(); start += kBatchSize) {
      std::size_t n = std::min(kBatchSize, list.size() - start);
      write(op::MARK);
      save_items(list.data() + start, n, depth + 1);
      write(op::APPENDS);
    }
  }

  // [pickle-save-list]

  // Python: save_tuple.
  void save_value(const Object::Tuple& tuple, int depth) {
    save_tuple(tuple.items.data(), tuple.items.size(), depth);
  }

  void save_tuple(const Object* items, std::size_t n, int depth) {
    if (n == 0) return write(op::EMPTY_TUPLE);
    if (n <= 3) {
      for (std::size_t i = 0; i < n; ++i) save(items[i], depth + 1);
      static constexpr char kTupleN[] = {op::TUPLE1, op::TUPLE2, op::TUPLE3};
      write(kTupleN[n - 1]);
    } else {
      write(op::MARK);
      save_items(items, n, depth + 1);
      write(op::TUPLE);
    }
    memoize();
  }

  // The placeholder of dump_with_run: the borrowed items as a tuple (as
  // save_tuple writes one), or the ints as a list (as save_value(List)
  // writes a list of ints).
  void save_run(int depth) {
    if (run_items_ != nullptr) return save_tuple(run_items_, run_n_, depth);
    write(op::EMPTY_LIST);
    memoize();
    if (run_n_ == 1) {
      save_item(run_ints_[0], depth + 1);
      write(op::APPEND);
      return;
    }
    for (std::size_t start = 0; start < run_n_; start += kBatchSize) {
      std::size_t n = std::min(kBatchSize, run_n_ - start);
      write(op::MARK);
      save_items(run_ints_ + start, n, depth + 1);
      write(op::APPENDS);
    }
  }

  // Python: save_dict + _batch_setitems.
  void save_value(const Object::Dict& dict, int depth) {
    write(op::EMPTY_DICT);
    memoize();
    // _pickle.c (batch_dict_exact): as for lists, SETITEM only for a dict of one.
    if (dict.size() == 1) {
      save(dict[0].first, depth + 1);
      save(dict[0].second, depth + 1);
      write(op::SETITEM);
      return;
    }
    for (std::size_t start = 0; start < dict.size(); start += kBatchSize) {
      std::size_t n = std::min(kBatchSize, dict.size() - start);
      write(op::MARK);
      for (std::size_t i = start; i < start + n; ++i) {
        save(dict[i].first, depth + 1);
        save(dict[i].second, depth + 1);
      }
      write(op::SETITEMS);
    }
  }

  // Python: save_set.
  void save_value(const Object::Set& set, int depth) {
    if (proto_ < 4) {
      save_reduce(*keep(Object::Reduced{{"builtins", "set"}, {Object(set.items())}, false, {}}).reduced(), depth);
      return;
    }
    write(op::EMPTY_SET);
    memoize();
    const auto& items = set.items();
    for (std::size_t start = 0; start < items.size(); start += kBatchSize) {
      std::size_t n = std::min(kBatchSize, items.size() - start);
      write(op::MARK);
      for (std::size_t i = start; i < start + n; ++i) save(items[i], depth + 1);
      write(op::ADDITEMS);
    }
  }

  // Python: save_frozenset.
  void save_value(const Object::FrozenSet& set, int depth) {
    if (proto_ < 4) {
      save_reduce(*keep(Object::Reduced{{"builtins", "frozenset"}, {Object(set.items())}, false, {}}).reduced(),
                  depth);
      return;
    }
    write(op::MARK);
    for (const auto& item : set.items()) save(item, depth + 1);
    write(op::FROZENSET);
    memoize();
  }

  // Python: save_global.
  void save_value(const Box<Object::Global>& g, int depth) {
    // dump_with_run's placeholder: the borrowed run is written in its place.
    if (g->module.empty() && (run_items_ != nullptr || run_ints_ != nullptr) &&
        *g == int_run_placeholder(run_items_ != nullptr)) {
      return save_run(depth);
    }
    save_global(g->module, g->qualname);
  }
  void save_value(const Object::Reduced& r, int depth) { save_reduce(r, depth); }
  void save_value(const Box<Object::Reduced>& r, int depth) { save_reduce(*r, depth); }

  void save_global(std::string_view module, std::string_view qualname) {
    if (auto index = memo_.find(IdentityMemo::Kind::Global, module, qualname)) return get(*index);
    if (proto_ >= 4) {
      // As save(module) and save(qualname): each str, then the frame check.
      save_text(module);
      opcode_boundary();
      save_text(qualname);
      opcode_boundary();
      write(op::STACK_GLOBAL);
    } else {
      // fix_imports: Python 3's builtins is Python 2's __builtin__ (_compat_pickle).
      std::string_view shown = (proto_ < 3 && module == "builtins") ? "__builtin__" : module;
      write(std::string(1, op::GLOBAL) + std::string(shown) + '\n' + std::string(qualname) + '\n');
    }
    memo_.add(IdentityMemo::Kind::Global, module, qualname, memoize());
  }

  // Python: save_reduce(func, args, state, obj=obj).
  void save_reduce(const Object::Reduced& r, int depth) {
    if (r.reduce) {
      // Python: the object's own __reduce__, called by save() at this point.
      save(keep(r.reduce()), depth);
      return;
    }
    save_global(r.callable.module, r.callable.qualname);
    save_tuple(r.args.data(), r.args.size(), depth);
    write(r.newobj ? op::NEWOBJ : op::REDUCE);
    memoize();
    if (!r.state.empty()) {
      save(r.state.front(), depth + 1);
      write(op::BUILD);
    }
  }

  // A value the pickler makes and then saves itself (the call that stands
  // for a set under protocols 2 and 3, what a __reduce__ hook returns): kept until
  // dump() ends, since the memo's keys point into the values saved.
  const Object& keep(Object value) {
    kept_.push_front(std::move(value));
    return kept_.front();
  }

  // The one-character str CPython shares for each latin-1 octet, as a key of
  // the memo (a view of static storage, as keys must outlive the Pickler).
  static std::string_view latin1_char(char octet) {
    static constexpr auto kOctets = [] {
      std::array<char, 256> all{};
      for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<char>(i);
      return all;
    }();
    return std::string_view(&kOctets[static_cast<unsigned char>(octet)], 1);
  }

  static constexpr std::size_t kNoFrame = static_cast<std::size_t>(-1);
  int proto_;
  std::string& out_;
  bool framing_ = false;
  std::size_t frame_start_ = kNoFrame;  // where the current frame's header is reserved
  std::uint64_t memo_size_ = 0;
  // dump_with_run's items or ints (one of them), written where the placeholder is.
  const Object* run_items_ = nullptr;
  const std::int64_t* run_ints_ = nullptr;
  std::size_t run_n_ = 0;
  IdentityMemo memo_;               // the values CPython would find in its memo by identity
  std::forward_list<Object> kept_;  // see keep(); empty, it allocates nothing
};

// ================================================================ the unpicklers' memo
// Python: Unpickler.memo, index -> what was memoized.  Picklers number their
// entries 0, 1, 2... (MEMOIZE always, CPython's BINPUTs too), so the entries
// [0, dense) sit in an array indexed by them, the first kInline inline: a small
// pickle's memo allocates nothing.  An index beyond the next one (only a
// hand-made pickle has that) goes in a map instead, so that a hostile
// LONG_BINPUT 4000000000 costs one entry, not an array that long.  Every key
// in the map is >= dense: the array grows only at index dense, taking that
// key out of the map if it was there.
template <class T>
class UnpicklerMemo {
 public:
  // Python: memo[index] = value.  The usual case, a MEMOIZE of a small
  // pickle (the next entry, in the inline array), inlined where it is used;
  // the others through put_other().
  [[gnu::always_inline]] void put(std::uint64_t index, const T& value) {
    if (index == dense_ && dense_ < kInline && sparse_.empty()) {
      inline_[dense_++] = value;
      return;
    }
    put_other(index, value);
  }
  void put_other(std::uint64_t index, const T& value) {
    if (index < dense_) {
      slot(index) = value;
    } else if (index == dense_) {
      if (dense_ >= kInline) more_.push_back(value);
      else inline_[dense_] = value;
      ++dense_;
      if (!sparse_.empty()) sparse_.erase(index);
    } else {
      sparse_[index] = value;
    }
  }
  // Python: memo[index], or nullptr when it was never set.
  const T* get(std::uint64_t index) const {
    if (index < dense_) return index < kInline ? &inline_[index] : &more_[index - kInline];
    auto it = sparse_.find(index);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  // Python: len(memo), the index MEMOIZE gives.
  std::uint64_t size() const { return dense_ + sparse_.size(); }

 private:
  T& slot(std::uint64_t index) { return index < kInline ? inline_[index] : more_[index - kInline]; }

  static constexpr std::uint64_t kInline = 16;
  std::array<T, kInline> inline_;  // entries below dense_ only are ever read: no need to clear it
  std::vector<T> more_;  // entries kInline, kInline + 1... up to dense_
  std::uint64_t dense_ = 0;
  std::unordered_map<std::uint64_t, T> sparse_;
};

// ================================================================ Unpickler
// Python: pickle._Unpickler.  The stack and memo hold nodes of a graph, as
// Python's hold references: a list is memoized (MEMOIZE) while still empty and
// filled afterwards (APPENDS), and a later GET must see the filled list.  The graph
// becomes an Object only after STOP (Node -> Object, `convert`).  Nodes live in an
// arena and point at each other with plain pointers, so a hostile graph (a cycle,
// a chain a million deep) is freed flat, without recursion.
struct Node {
  enum class Kind { Atom, List, Tuple, Dict, Set, FrozenSet, Global, Reduced };
  Kind kind = Kind::Atom;
  bool newobj = false;         // Reduced: NEWOBJ rather than REDUCE
  bool converting = false;     // on the path of convert(): seeing it again is a cycle
  Object atom;                 // Atom: None, bool, int, float, str, bytes, bytearray;
                               // Global, Reduced: the callable, an Object::Global
  std::vector<Node*> items;    // containers; Dict: key, value, key, value...; Reduced: args
  Node* state = nullptr;       // Reduced: the BUILD state
};
static_assert(sizeof(Node) <= 80, "a node per opcode: keep it small (see pickle.hpp)");

std::string kind_name(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Atom: return n.atom.type_name();
    case Node::Kind::List: return "list";
    case Node::Kind::Tuple: return "tuple";
    case Node::Kind::Dict: return "dict";
    case Node::Kind::Set: return "set";
    case Node::Kind::FrozenSet: return "frozenset";
    case Node::Kind::Global: return "global";
    case Node::Kind::Reduced: return "object";
  }
  return "?";
}

class Unpickler {
 public:
  explicit Unpickler(std::string_view data)
      : data_(data), budget_(8 * data.size() + 4096) {}

  // Python: _Unpickler.load.
  Object load() {
    if (data_.empty()) throw UnpicklingError("Ran out of input");
    for (;;) {
      char code = read(1)[0];
      if (code == op::STOP) break;
      dispatch(code);
    }
    Node* result = pop();
    return convert(result, 0);
  }
  /// How many bytes load() has read (up to and including STOP).
  std::size_t consumed() const { return pos_; }

 private:
  // -------- input
  std::string_view read(std::size_t n) {
    if (n > data_.size() - pos_) throw UnpicklingError("pickle data was truncated");
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t read_uint(int nbytes) { return get_le(read(static_cast<std::size_t>(nbytes)), nbytes); }
  // A length field, checked against what is left before anything is allocated.
  std::size_t read_length(int nbytes) {
    std::uint64_t n = read_uint(nbytes);
    if (n > data_.size() - pos_) throw UnpicklingError("pickle data was truncated");
    return static_cast<std::size_t>(n);
  }
  // Protocol 0's text arguments end with a newline.
  std::string_view readline() {
    std::size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) throw UnpicklingError("pickle data was truncated");
    std::string_view line = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }

  // -------- nodes, stack, marks
  Node* make(Node::Kind kind) {
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
  }
  Node* make_atom(Object value) {
    Node* n = make(Node::Kind::Atom);
    n->atom = std::move(value);
    return n;
  }
  void push(Node* n) { stack_.push_back(n); }
  // Python keeps the items since the last MARK apart (the metastack); nothing may
  // pop below that fence except an opcode that consumes the mark.
  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  Node* pop() {
    if (stack_.size() <= fence()) throw UnpicklingError("unpickling stack underflow");
    Node* n = stack_.back();
    stack_.pop_back();
    return n;
  }
  Node* top() {
    if (stack_.size() <= fence()) throw UnpicklingError("unpickling stack underflow");
    return stack_.back();
  }
  // Python: pop_mark: the items pushed since the last MARK, and the mark itself.
  std::vector<Node*> pop_mark() {
    if (marks_.empty()) throw UnpicklingError("could not find MARK");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Node*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  Node* expect(Node* n, Node::Kind kind, const char* opname) {
    if (n->kind != kind) {
      throw UnpicklingError(std::string(opname) + " applied to a " + kind_name(*n));
    }
    return n;
  }

  // -------- memo
  void memo_put(std::uint64_t index) { memo_.put(index, top()); }
  void memo_get(std::uint64_t index) {
    Node* const* n = memo_.get(index);
    if (n == nullptr) throw UnpicklingError("Memo value not found at index " + std::to_string(index));
    push(*n);
  }

  // -------- globals (Python: find_class, with fix_imports for protocols < 3)
  // [pickle-find-class]
  Node* find_class(std::string module, std::string qualname) {
    if (proto_ < 3 && (module == "__builtin__" || module == "exceptions")) module = "builtins";
    if (!ForkingPickler::is_allowed(module, qualname)) {
      throw UnpicklingError("global '" + module + "." + qualname + "' is forbidden");
    }
    Node* n = make(Node::Kind::Global);
    n->atom = Object(Object::Global{std::move(module), std::move(qualname)});
    return n;
  }

  // [pickle-find-class]

  static std::string text_of(const Node* n, const char* what) {
    if (n->kind == Node::Kind::Atom) {
      if (const auto* s = std::get_if<std::string>(&n->atom.variant())) return *s;
    }
    throw UnpicklingError(std::string(what) + " must be a str");
  }

  // Python: load_reduce / load_newobj: call a global.  The built-ins are run here,
  // on data; every other allowed global becomes an Object::Reduced.
  Node* call(Node* callable, std::vector<Node*> args, bool newobj) {
    if (callable->kind != Node::Kind::Global) {
      throw UnpicklingError("cannot call a " + kind_name(*callable));
    }
    const auto& [module, qualname] = *callable->atom.global();
    if (is_native(module, qualname) && !newobj) return call_native(qualname, std::move(args));
    Node* n = make(Node::Kind::Reduced);
    n->atom = callable->atom;
    charge(args.size());  // a GET of a big tuple must not be copied for free
    n->items = std::move(args);
    n->newobj = newobj;
    return n;
  }

  Node* call_native(const std::string& qualname, std::vector<Node*> args) {
    auto iterable_items = [&](Node* arg) {
      switch (arg->kind) {
        case Node::Kind::List: case Node::Kind::Tuple: case Node::Kind::Set:
        case Node::Kind::FrozenSet:
          return arg->items;
        default:
          throw UnpicklingError("builtins." + qualname + "() wants a list, got a " + kind_name(*arg));
      }
    };
    auto octets_of = [&](Node* arg) -> std::string {
      if (arg->kind == Node::Kind::Atom) {
        if (const auto* b = std::get_if<Bytes>(&arg->atom.variant())) return b->data;
      }
      throw UnpicklingError("builtins." + qualname + "() wants bytes");
    };
    if (qualname == "encode") {  // _codecs.encode(text, 'latin1')
      if (args.size() != 2) throw UnpicklingError("_codecs.encode() takes 2 arguments here");
      std::string encoding = text_of(args[1], "the encoding");
      if (encoding != "latin1" && encoding != "latin-1" && encoding != "iso-8859-1") {
        throw UnpicklingError("_codecs.encode: encoding '" + encoding + "' is not supported");
      }
      return make_atom(Object(Bytes(utf8_to_latin1(text_of(args[0], "the text")))));
    }
    if (args.size() > 1) throw UnpicklingError("builtins." + qualname + "() takes at most 1 argument");
    if (qualname == "bytes") return make_atom(Object(Bytes(args.empty() ? "" : octets_of(args[0]))));
    if (qualname == "bytearray") {
      return make_atom(Object(Bytearray(args.empty() ? "" : octets_of(args[0]))));
    }
    Node::Kind kind = qualname == "set"         ? Node::Kind::Set
                      : qualname == "frozenset" ? Node::Kind::FrozenSet
                                                : Node::Kind::List;
    Node* n = make(kind);
    if (!args.empty()) {
      charge(args[0]->items.size());  // set(GET big_list) again and again: paid for
      n->items = iterable_items(args[0]);
    }
    return n;
  }

  // -------- Python's load_* methods, one case per opcode
  void dispatch(char code) {
    switch (code) {
      case op::PROTO: {
        proto_ = static_cast<int>(read_uint(1));
        if (proto_ > HIGHEST_PROTOCOL) {
          throw UnpicklingError("unsupported pickle protocol: " + std::to_string(proto_));
        }
        return;
      }
      case op::FRAME: {
        read_length(8);  // frames only group opcodes; the length must fit what is left
        return;
      }
      case op::NONE: return push(make_atom(Object()));
      case op::NEWTRUE: return push(make_atom(Object(true)));
      case op::NEWFALSE: return push(make_atom(Object(false)));
      case op::BININT: {
        auto v = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_uint(4)));
        return push(make_atom(Object(static_cast<std::int64_t>(v))));
      }
      case op::BININT1: return push(make_atom(Object(static_cast<std::int64_t>(read_uint(1)))));
      case op::BININT2: return push(make_atom(Object(static_cast<std::int64_t>(read_uint(2)))));
      case op::LONG1: return push(make_atom(Object(decode_long(read(read_length(1))))));
      case op::LONG4: {
        std::uint64_t n = read_uint(4);
        if (n & 0x80000000u) throw UnpicklingError("LONG pickle has negative byte count");
        if (n > data_.size() - pos_) throw UnpicklingError("pickle data was truncated");
        return push(make_atom(Object(decode_long(read(n)))));
      }
      case op::INT: return push(make_atom(parse_int_line(readline(), true)));
      case op::LONG: {
        std::string_view line = readline();
        if (!line.empty() && line.back() == 'L') line.remove_suffix(1);
        return push(make_atom(parse_int_line(line, false)));
      }
      case op::FLOAT: return push(make_atom(Object(parse_float_line(readline()))));
      case op::BINFLOAT: {
        std::string_view b = read(8);
        std::uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return push(make_atom(Object(d)));
      }
      case op::SHORT_BINUNICODE: return push(make_atom(Object(std::string(read(read_length(1))))));
      case op::BINUNICODE: return push(make_atom(Object(std::string(read(read_length(4))))));
      case op::BINUNICODE8: return push(make_atom(Object(std::string(read(read_length(8))))));
      case op::UNICODE: return push(make_atom(Object(raw_unicode_escape(readline()))));
      case op::SHORT_BINBYTES: return push(make_atom(Object(Bytes(std::string(read(read_length(1)))))));
      case op::BINBYTES: return push(make_atom(Object(Bytes(std::string(read(read_length(4)))))));
      case op::BINBYTES8: return push(make_atom(Object(Bytes(std::string(read(read_length(8)))))));
      case op::BYTEARRAY8:
        return push(make_atom(Object(Bytearray(std::string(read(read_length(8)))))));
      // Python 2 str: Unpickler(encoding='ASCII') makes it a str.
      case op::SHORT_BINSTRING: return push(make_atom(Object(ascii(read(read_length(1))))));
      case op::BINSTRING: {
        std::uint64_t n = read_uint(4);
        if (n & 0x80000000u) throw UnpicklingError("BINSTRING pickle has negative byte count");
        if (n > data_.size() - pos_) throw UnpicklingError("pickle data was truncated");
        return push(make_atom(Object(ascii(read(n)))));
      }
      case op::STRING: return push(make_atom(Object(ascii(string_escape(readline())))));
      case op::EMPTY_TUPLE: return push(make(Node::Kind::Tuple));
      case op::TUPLE1: case op::TUPLE2: case op::TUPLE3: {
        std::size_t n = static_cast<std::size_t>(code - op::TUPLE1) + 1;
        if (stack_.size() < fence() + n) throw UnpicklingError("unpickling stack underflow");
        Node* t = make(Node::Kind::Tuple);
        t->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        return push(t);
      }
      case op::TUPLE: {
        Node* t = make(Node::Kind::Tuple);
        t->items = pop_mark();
        return push(t);
      }
      case op::EMPTY_LIST: return push(make(Node::Kind::List));
      case op::LIST: {
        Node* l = make(Node::Kind::List);
        l->items = pop_mark();
        return push(l);
      }
      case op::APPEND: {
        Node* item = pop();
        Node* list = expect(top(), Node::Kind::List, "APPEND");
        list->items.push_back(item);
        return;
      }
      case op::APPENDS: {
        std::vector<Node*> items = pop_mark();
        Node* list = expect(top(), Node::Kind::List, "APPENDS");
        list->items.insert(list->items.end(), items.begin(), items.end());
        return;
      }
      case op::EMPTY_DICT: return push(make(Node::Kind::Dict));
      case op::DICT: {
        std::vector<Node*> items = pop_mark();
        if (items.size() % 2) throw UnpicklingError("odd number of items for DICT");
        Node* d = make(Node::Kind::Dict);
        d->items = std::move(items);
        return push(d);
      }
      case op::SETITEM: {
        Node* value = pop();
        Node* key = pop();
        Node* dict = expect(top(), Node::Kind::Dict, "SETITEM");
        dict->items.push_back(key);
        dict->items.push_back(value);
        return;
      }
      case op::SETITEMS: {
        std::vector<Node*> items = pop_mark();
        if (items.size() % 2) throw UnpicklingError("odd number of items for SETITEMS");
        Node* dict = expect(top(), Node::Kind::Dict, "SETITEMS");
        dict->items.insert(dict->items.end(), items.begin(), items.end());
        return;
      }
      case op::EMPTY_SET: return push(make(Node::Kind::Set));
      case op::ADDITEMS: {
        std::vector<Node*> items = pop_mark();
        Node* set = expect(top(), Node::Kind::Set, "ADDITEMS");
        set->items.insert(set->items.end(), items.begin(), items.end());
        return;
      }
      case op::FROZENSET: {
        Node* s = make(Node::Kind::FrozenSet);
        s->items = pop_mark();
        return push(s);
      }
      case op::POP: {
        // A POP right after a MARK removes the mark (_pickle.c: load_pop).
        if (!marks_.empty() && marks_.back() == stack_.size()) {
          marks_.pop_back();
          return;
        }
        pop();
        return;
      }
      case op::POP_MARK: pop_mark(); return;
      case op::DUP: return push(top());
      case op::MARK: marks_.push_back(stack_.size()); return;
      case op::GET: return memo_get(parse_index(readline()));
      case op::BINGET: return memo_get(read_uint(1));
      case op::LONG_BINGET: return memo_get(read_uint(4));
      case op::PUT: return memo_put(parse_index(readline()));
      case op::BINPUT: return memo_put(read_uint(1));
      case op::LONG_BINPUT: return memo_put(read_uint(4));
      case op::MEMOIZE: return memo_put(memo_.size());
      case op::GLOBAL: {
        std::string module(readline());
        std::string qualname(readline());
        return push(find_class(std::move(module), std::move(qualname)));
      }
      case op::STACK_GLOBAL: {
        std::string qualname = text_of(pop(), "STACK_GLOBAL's name");
        std::string module = text_of(pop(), "STACK_GLOBAL's module");
        return push(find_class(std::move(module), std::move(qualname)));
      }
      case op::REDUCE: {
        Node* args = expect(pop(), Node::Kind::Tuple, "REDUCE's args");
        Node* callable = pop();
        return push(call(callable, args->items, false));
      }
      case op::NEWOBJ: {
        Node* args = expect(pop(), Node::Kind::Tuple, "NEWOBJ's args");
        Node* cls = pop();
        return push(call(cls, args->items, true));
      }
      case op::NEWOBJ_EX: {
        Node* kwargs = expect(pop(), Node::Kind::Dict, "NEWOBJ_EX's kwargs");
        Node* args = expect(pop(), Node::Kind::Tuple, "NEWOBJ_EX's args");
        Node* cls = pop();
        if (!kwargs->items.empty()) throw UnpicklingError("NEWOBJ_EX with keyword arguments is not supported");
        return push(call(cls, args->items, true));
      }
      case op::INST: {
        std::string module(readline());
        std::string qualname(readline());
        Node* cls = find_class(std::move(module), std::move(qualname));
        return push(call(cls, pop_mark(), false));
      }
      case op::OBJ: {
        std::vector<Node*> items = pop_mark();
        if (items.empty()) throw UnpicklingError("OBJ without a class");
        Node* cls = items.front();
        return push(call(cls, std::vector<Node*>(items.begin() + 1, items.end()), false));
      }
      case op::BUILD: {
        Node* state = pop();
        Node* obj = expect(top(), Node::Kind::Reduced, "BUILD");
        obj->state = state;
        return;
      }
      case op::PERSID: case op::BINPERSID:
        throw UnpicklingError("A load persistent id instruction was encountered, but no persistent_load function was specified.");
      case op::EXT1: case op::EXT2: case op::EXT4:
        throw UnpicklingError("unregistered extension code (the copyreg extension registry is not supported)");
      case op::NEXT_BUFFER: case op::READONLY_BUFFER:
        throw UnpicklingError("pickle stream refers to out-of-band data but no *buffers* argument was given");
      default: {
        auto c = static_cast<unsigned char>(code);
        char text[40];
        if (c >= 0x20 && c < 0x7f) std::snprintf(text, sizeof text, "invalid load key, '%c'.", c);
        else std::snprintf(text, sizeof text, "invalid load key, '\\x%02x'.", c);
        throw UnpicklingError(text);
      }
    }
  }

  // -------- protocol 0 text arguments
  static Object parse_int_line(std::string_view line, bool is_int_opcode) {
    if (is_int_opcode && line == "00") return Object(false);  // Python 2.2's bools
    if (is_int_opcode && line == "01") return Object(true);
    std::string text(line);
    if (text.empty()) throw UnpicklingError("invalid literal for int(): ''");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != '\0') {
      throw UnpicklingError("invalid literal for int(): " + str_repr(text));
    }
    if (errno == ERANGE) throw UnpicklingError("int " + text + " does not fit in 64 bits");
    return Object(static_cast<std::int64_t>(v));
  }
  static std::uint64_t parse_index(std::string_view line) {
    Object v = parse_int_line(line, false);
    std::int64_t i = std::get<std::int64_t>(v.variant());
    if (i < 0) throw UnpicklingError("negative memo index");
    return static_cast<std::uint64_t>(i);
  }
  static double parse_float_line(std::string_view line) {
    std::string text(line);
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') throw UnpicklingError("could not convert string to float: " + str_repr(text));
    return d;
  }
  static std::string ascii(std::string_view octets) {
    for (char c : octets) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        throw UnpicklingError("a Python 2 str that is not ASCII (pass through bytes instead)");
      }
    }
    return std::string(octets);
  }
  // STRING's argument: a quoted Python 2 repr (codecs.escape_decode).
  static std::string string_escape(std::string_view line) {
    if (line.size() < 2 || line.front() != line.back() || (line.front() != '\'' && line.front() != '"')) {
      throw UnpicklingError("the STRING opcode argument must be quoted");
    }
    line = line.substr(1, line.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '\\' || i + 1 == line.size()) {
        out += line[i];
        continue;
      }
      char e = line[++i];
      switch (e) {
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'x': {
          std::string hex(line.substr(i + 1, 2));
          if (hex.size() != 2 || !std::isxdigit(static_cast<unsigned char>(hex[0])) ||
              !std::isxdigit(static_cast<unsigned char>(hex[1]))) {
            throw UnpicklingError("invalid \\x escape");
          }
          out += static_cast<char>(std::strtol(hex.c_str(), nullptr, 16));
          i += 2;
          break;
        }
        default: out += '\\'; out += e;
      }
    }
    return out;
  }
  // UNICODE's argument: raw-unicode-escape (\uXXXX, \UXXXXXXXX, other octets latin-1).
  static std::string raw_unicode_escape(std::string_view line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      auto c = static_cast<unsigned char>(line[i]);
      if (c == '\\' && i + 1 < line.size() && (line[i + 1] == 'u' || line[i + 1] == 'U')) {
        std::size_t digits = line[i + 1] == 'u' ? 4 : 8;
        if (i + 2 + digits > line.size()) throw UnpicklingError("truncated \\uXXXX escape");
        std::uint32_t cp = 0;
        for (std::size_t k = 0; k < digits; ++k) {
          char h = line[i + 2 + k];
          if (!std::isxdigit(static_cast<unsigned char>(h))) throw UnpicklingError("truncated \\uXXXX escape");
          cp = cp * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        if (cp > 0x10ffff) throw UnpicklingError("\\Uxxxxxxxx out of range");
        append_utf8(out, cp);
        i += 1 + digits;
      } else {
        append_utf8(out, c);
      }
    }
    return out;
  }

  // -------- Node graph -> Object, after STOP
  // The memory bound.  Each Object made costs one unit of the budget, a str or
  // bytes one more per 64 octets, so copies made by GETs of one container are paid
  // for; so are the items a call copies while reading (set(GET big_list)...).
  void charge(std::size_t units) {
    if (units > budget_) {
      throw UnpicklingError("pickle expands beyond the memory bound (8 Objects per input byte)");
    }
    budget_ -= units;
  }

  Object convert(Node* n, int depth) {
    bool container = n->kind != Node::Kind::Atom && n->kind != Node::Kind::Global;
    if (depth >= kMaxDepth && container) {
      throw UnpicklingError("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    if (n->converting) throw UnpicklingError("a recursive structure cannot be loaded as a value");
    charge(1);
    n->converting = true;
    Object out = convert_node(n, depth);
    n->converting = false;
    return out;
  }

  std::vector<Object> convert_items(const std::vector<Node*>& items, int depth) {
    std::vector<Object> out;
    out.reserve(items.size());
    for (Node* item : items) out.push_back(convert(item, depth + 1));
    return out;
  }

  static void require_hashable(const Object& key) {
    const auto& v = key.variant();
    if (std::holds_alternative<Object::List>(v) || std::holds_alternative<Object::Dict>(v) ||
        std::holds_alternative<Object::Set>(v) || std::holds_alternative<Bytearray>(v)) {
      throw UnpicklingError("unhashable type: '" + key.type_name() + "'");
    }
  }

  Object convert_node(Node* n, int depth) {
    switch (n->kind) {
      case Node::Kind::Atom: {
        if (const auto* s = std::get_if<std::string>(&n->atom.variant())) charge(s->size() / 64);
        if (const auto* b = std::get_if<Bytes>(&n->atom.variant())) charge(b->size() / 64);
        if (const auto* b = std::get_if<Bytearray>(&n->atom.variant())) charge(b->size() / 64);
        return n->atom;
      }
      case Node::Kind::List: return Object(convert_items(n->items, depth));
      case Node::Kind::Tuple: return Object(Object::Tuple{convert_items(n->items, depth)});
      case Node::Kind::Set: case Node::Kind::FrozenSet: {
        std::vector<Object> items = convert_items(n->items, depth);
        for (const auto& item : items) require_hashable(item);
        Object::Set set(std::move(items));
        if (n->kind == Node::Kind::Set) return Object(std::move(set));
        return Object(Object::FrozenSet(std::move(set)));
      }
      case Node::Kind::Dict: {
        // Python's dict: a key set twice keeps its first place and its last value.
        Object::Dict dict;
        dict.reserve(n->items.size() / 2);
        auto less = [](const Object* a, const Object* b) { return Object::compare(*a, *b) < 0; };
        std::map<const Object*, std::size_t, decltype(less)> where(less);
        for (std::size_t i = 0; i + 1 < n->items.size(); i += 2) {
          Object key = convert(n->items[i], depth + 1);
          require_hashable(key);
          Object value = convert(n->items[i + 1], depth + 1);
          if (auto it = where.find(&key); it != where.end()) {
            dict[it->second].second = std::move(value);
          } else {
            dict.emplace_back(std::move(key), std::move(value));  // no reallocation: reserved
            where.emplace(&dict.back().first, dict.size() - 1);
          }
        }
        return Object(std::move(dict));
      }
      case Node::Kind::Global: return n->atom;
      case Node::Kind::Reduced: {
        Object::Reduced r{*n->atom.global(), convert_items(n->items, depth), n->newobj, {}};
        if (n->state != nullptr) r.state.push_back(convert(n->state, depth + 1));
        ForkingPickler::Rebuild rebuild = ForkingPickler::_rebuild_of(r.callable.module, r.callable.qualname);
        if (rebuild) return rebuild(Object(std::move(r)));
        return Object(std::move(r));
      }
    }
    throw UnpicklingError("internal: a node of no known kind");
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  int proto_ = 0;
  std::size_t budget_;
  std::deque<Node> arena_;  // owns every node, which never moves; freed flat
  std::vector<Node*> stack_;
  std::vector<std::size_t> marks_;            // stack sizes at each MARK (the metastack)
  UnpicklerMemo<Node*> memo_;
};


// ================================================================ the direct path
// A faster reader for the pickles the package sends most (a Pool's tasks and
// results, a Queue's items, a Process object and its preparation data): None,
// bool, int, float, str, bytes, tuples, lists, globals, dicts with str keys
// (up to kDirectDictItems items) and REDUCE of a global that is not one of
// the builtins the Unpickler evaluates itself.  It builds the value as it
// reads, without the Unpickler's graph.  At anything else (a GET of a
// container, NEWOBJ, BUILD, another kind of dict key, the text opcodes of
// protocols 0 and 1, an error) it gives up, and loads() reads the pickle again
// with the Unpickler, which handles everything and says what is wrong.  Its
// bounds are the Unpickler's: no container nested deeper than kMaxDepth, at
// most 8 Objects per input byte.  The rebuild functions of REDUCE's globals
// run only once the whole pickle has been read (see rebuild_all), as the
// Unpickler runs them: a pickle given up half-way has called none.
class DirectUnpickler {
 public:
  struct Gone {};  // thrown to give up

  explicit DirectUnpickler(std::string_view data)
      : data_(data), budget_(8 * data.size() + 4096), stack_(std::move(scratch().stack)),
        marks_(std::move(scratch().marks)) {
    stack_.clear();
    marks_.clear();
    // Most opcodes push one value: room for them at once saves moving every
    // value again each time the stack would grow (bounded, for huge inputs).
    stack_.reserve(std::min<std::size_t>(data.size() / 2 + 8, std::size_t{1} << 20));
  }
  ~DirectUnpickler() {
    stack_.clear();
    if (stack_.capacity() <= kKeptSlots) scratch().stack = std::move(stack_);
    if (marks_.capacity() <= kKeptSlots) scratch().marks = std::move(marks_);
  }
  DirectUnpickler(const DirectUnpickler&) = delete;
  DirectUnpickler& operator=(const DirectUnpickler&) = delete;

  /// The value, or nullopt when the Unpickler must do it.
  std::optional<Object> load() {
    std::optional<Object> value;
    try {
      while (pos_ < data_.size() && !value) {
        char code = data_[pos_++];
        if (code == op::STOP) {
          if (stack_.size() != 1 || !marks_.empty()) return std::nullopt;
          value = std::move(stack_.back().value);
        } else if (!dispatch(code)) {
          return std::nullopt;
        }
      }
    } catch (const Gone&) {
      return std::nullopt;  // given up: the Unpickler reads it again
    } catch (const std::exception&) {
      return std::nullopt;  // an error: the Unpickler reads it again and reports it its own way
    }
    // Outside the try: what a rebuild function throws is the caller's error,
    // not a reason to read the pickle again (and call the others twice).
    if (value && reduced_ > 0) rebuild_all(*value);
    return value;
  }
  std::size_t consumed() const { return pos_; }

 private:
  struct Slot {
    Object value;
    int depth = 0;             // containers nested in it, itself included
    std::uint64_t serial = 0;  // which push this is, for the memo
  };

  // read, charge, push and memo_put run once or twice per opcode: inlined
  // into dispatch(), without a call each.
  [[gnu::always_inline]] std::string_view read(std::size_t n) {
    if (n > data_.size() - pos_) throw Gone{};
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t read_uint(int nbytes) { return get_le(read(static_cast<std::size_t>(nbytes)), nbytes); }
  std::size_t read_length(int nbytes) {
    std::uint64_t n = read_uint(nbytes);
    if (n > data_.size() - pos_) throw Gone{};
    return static_cast<std::size_t>(n);
  }
  [[gnu::always_inline]] void charge(std::size_t units) {
    if (units > budget_) throw Gone{};
    budget_ -= units;
  }
  // The slot's Object is made in place from `value`: from an int, a
  // std::string... directly (not an Object made first and then moved into
  // the slot, which dispatches on the type twice more: the move and the
  // temporary's destruction); nor default-made, then assigned.
  template <class Value>
  [[gnu::always_inline]] void push(Value&& value, int depth = 0) {
    charge(1);
    stack_.emplace_back(std::forward<Value>(value), depth, ++serial_);
  }
  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  Slot pop() {
    if (stack_.size() <= fence()) throw Gone{};
    Slot s = std::move(stack_.back());
    stack_.pop_back();
    return s;
  }
  // The items since the last MARK, as a container's items; `depth` gets the
  // deepest of them.
  std::vector<Object> pop_mark(int& depth) {
    if (marks_.empty()) throw Gone{};
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Object> items;
    items.reserve(stack_.size() - mark);
    for (std::size_t i = mark; i < stack_.size(); ++i) {
      depth = std::max(depth, stack_[i].depth);
      items.push_back(std::move(stack_[i].value));
    }
    stack_.resize(mark);
    return items;
  }
  void push_container(Object&& value, int child_depth) {
    if (child_depth + 1 > kMaxDepth) throw Gone{};
    push(std::move(value), child_depth + 1);
  }
  [[gnu::always_inline]] void memo_put(std::uint64_t index) {
    if (stack_.size() <= fence()) throw Gone{};
    memo_.put(index, {stack_.size() - 1, stack_.back().serial});
  }
  void memo_get(std::uint64_t index) {
    const auto* entry = memo_.get(index);
    if (entry == nullptr) throw Gone{};
    auto [at, serial] = *entry;
    // Only an atom still on the stack, unchanged: a container may have been
    // filled since (the Unpickler's graph answers that).
    if (at >= stack_.size() || stack_[at].serial != serial || stack_[at].depth != 0) throw Gone{};
    const Object& atom = stack_[at].value;
    if (const auto* text = std::get_if<std::string>(&atom.variant())) charge(text->size() / 64);
    if (const auto* octets = std::get_if<Bytes>(&atom.variant())) charge(octets->size() / 64);
    Object copy = atom;
    push(std::move(copy));
  }

  // [pickle-atom-run]
  // A run of plain atoms (ints, floats, bools, None) right after a MARK: how a
  // Pool's chunk of numbers and its list of results arrive (MARK BININT ...
  // TUPLE, EMPTY_LIST MARK BININT ... APPENDS).  They are decoded in one tight
  // loop straight into the list below the MARK, or into the items of the
  // tuple that closes the run, instead of each going through a stack slot and
  // being moved twice (about 100 instructions per int; this loop, with the
  // count ahead that sizes the container once, about 50).
  // The pickler memoizes none of these atoms, so none needs a serial for the
  // memo.  A run closed by anything else goes on the stack one slot per
  // atom, as dispatch() would have put it, and reading goes on from there.
  void read_atom_run() {
    if (pos_ >= data_.size() || !is_atom_opcode(data_[pos_])) return;
    // The list just below the MARK (and above any outer MARK), if it is one.
    std::size_t mark = marks_.back();
    std::size_t outer = marks_.size() > 1 ? marks_[marks_.size() - 2] : 0;
    Object::List* list = mark > outer ? std::get_if<Object::List>(&stack_[mark - 1].value.variant()) : nullptr;
    std::vector<Object> run;
    std::vector<Object>& into = list != nullptr ? *list : run;
    std::size_t first = into.size();
    // Room for exactly the atoms that follow (a list of two ints must not
    // reserve for the rest of the pickle); for a list's first batch, those
    // of its later batches too (APPENDS MARK), so that it is allocated once.
    // Only the first: counting ahead again at every batch would take time
    // quadratic in a list of many one-item batches.
    std::size_t wanted = first + count_atoms(list != nullptr && first == 0);
    if (wanted > into.capacity()) into.reserve(std::max(wanted, 2 * into.capacity()));
    const auto* bytes = reinterpret_cast<const unsigned char*>(data_.data());
    while (pos_ < data_.size()) {
      std::size_t at = pos_;
      char code = data_[pos_++];
      std::size_t left = data_.size() - pos_;
      switch (code) {
        case op::BININT1:
          if (left < 1) throw Gone{};
          into.emplace_back(static_cast<std::int64_t>(bytes[pos_]));
          pos_ += 1;
          continue;
        case op::BININT2:
          if (left < 2) throw Gone{};
          into.emplace_back(static_cast<std::int64_t>(bytes[pos_] | (bytes[pos_ + 1] << 8)));
          pos_ += 2;
          continue;
        case op::BININT: {
          if (left < 4) throw Gone{};
          std::uint32_t u = bytes[pos_] | (bytes[pos_ + 1] << 8) | (bytes[pos_ + 2] << 16) |
                            (static_cast<std::uint32_t>(bytes[pos_ + 3]) << 24);
          into.emplace_back(static_cast<std::int64_t>(static_cast<std::int32_t>(u)));
          pos_ += 4;
          continue;
        }
        case op::LONG1: into.emplace_back(decode_long(read(read_length(1)))); continue;
        case op::BINFLOAT: into.emplace_back(read_binfloat()); continue;
        case op::NEWTRUE: into.emplace_back(true); continue;
        case op::NEWFALSE: into.emplace_back(false); continue;
        case op::NONE: into.emplace_back(); continue;
        case op::FRAME: read_length(8); continue;  // a frame may start inside a long list
        default: pos_ = at; break;
      }
      break;
    }
    std::size_t count = into.size() - first;
    char next = pos_ < data_.size() ? data_[pos_] : op::STOP;
    if (list != nullptr && next == op::APPENDS) {
      ++pos_;
      charge(count);
      marks_.pop_back();
      stack_[mark - 1].depth = std::max(stack_[mark - 1].depth, 1);
      return;
    }
    if (list == nullptr && next == op::TUPLE) {
      ++pos_;
      charge(count);
      marks_.pop_back();
      push_container(Object(Object::Tuple{std::move(run)}), 0);
      return;
    }
    // Not what the fast path expects: the atoms go back on the stack.
    std::vector<Object> atoms(std::make_move_iterator(into.begin() + static_cast<std::ptrdiff_t>(first)),
                              std::make_move_iterator(into.end()));
    into.resize(first);
    for (Object& atom : atoms) push(std::move(atom));
  }
  // [pickle-atom-run]

  // How many atoms read_atom_run will find from pos_ on, and with
  // `across_batches` in the batches that follow (each atom takes at least
  // one input byte, so the count is bounded by the input's size).
  std::size_t count_atoms(bool across_batches) const {
    std::size_t count = 0, at = pos_, size = data_.size();
    while (at < size) {
      switch (data_[at]) {
        case op::BININT1: at += 2; break;
        case op::BININT2: at += 3; break;
        case op::BININT: at += 5; break;
        case op::BINFLOAT: at += 9; break;
        case op::LONG1:
          if (at + 1 >= size) return count;
          at += 2 + static_cast<unsigned char>(data_[at + 1]);
          break;
        case op::NEWTRUE: case op::NEWFALSE: case op::NONE: at += 1; break;
        case op::FRAME: at += 9; continue;
        case op::APPENDS:
          if (!across_batches || at + 1 >= size || data_[at + 1] != op::MARK) return count;
          at += 2;
          continue;
        default: return count;
      }
      ++count;
    }
    return count;
  }

  static bool is_atom_opcode(char code) {
    switch (code) {
      case op::BININT1: case op::BININT2: case op::BININT: case op::LONG1: case op::BINFLOAT:
      case op::NEWTRUE: case op::NEWFALSE: case op::NONE:
        return true;
      default:
        return false;
    }
  }

  double read_binfloat() {
    std::string_view b = read(8);
    std::uint64_t bits = 0;
    for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

  // [pickle-direct-dict]
  // SETITEMS (the pairs since the MARK) or SETITEM (the last pair) into the
  // dict below them.  Python's dict keeps a key set twice at its first place
  // with its last value, and 1, 1.0 and True are one key: with str keys only,
  // in a dict of at most kDirectDictItems, a short scan sees a repeated key,
  // and a repeat is left to the Unpickler, which applies the rule.
  bool set_items(bool many) {
    int depth = 0;
    std::vector<Object> items;
    if (many) {
      items = pop_mark(depth);
    } else {
      Slot value = pop();
      Slot key = pop();
      depth = std::max(key.depth, value.depth);
      items.push_back(std::move(key.value));
      items.push_back(std::move(value.value));
    }
    if (items.size() % 2 != 0 || stack_.size() <= fence()) return false;
    Slot& slot = stack_.back();
    auto* dict = std::get_if<Object::Dict>(&slot.value.variant());
    if (dict == nullptr || depth + 1 > kMaxDepth || dict->size() + items.size() / 2 > kDirectDictItems) return false;
    dict->reserve(dict->size() + items.size() / 2);
    for (std::size_t i = 0; i < items.size(); i += 2) {
      const auto* key = std::get_if<std::string>(&items[i].variant());
      if (key == nullptr) return false;
      for (const auto& [k, v] : *dict) {
        if (*std::get_if<std::string>(&k.variant()) == *key) return false;
      }
      dict->emplace_back(std::move(items[i]), std::move(items[i + 1]));
    }
    slot.depth = std::max(slot.depth, depth + 1);
    return true;
  }
  // [pickle-direct-dict]

  // REDUCE: callable(*args) for a global the Unpickler would not evaluate
  // itself (the natives, builtins.set and the like, are its own): kept as an
  // Object::Reduced, as the Unpickler's graph keeps it, and rebuilt by
  // rebuild_all once the pickle is read.
  bool reduce() {
    Slot args = pop();
    Slot callable = pop();
    auto* tuple = std::get_if<Object::Tuple>(&args.value.variant());
    const Object::Global* global = callable.value.global();
    if (tuple == nullptr || global == nullptr || is_native(global->module, global->qualname)) return false;
    charge(tuple->items.size());
    ++reduced_;
    // As deep as its arguments' tuple: the Reduced holds them one level down.
    push(Object(Object::Reduced{*global, std::move(tuple->items), false, {}}), std::max(args.depth, 1));
    return true;
  }

  // The Unpickler's order: each REDUCE's arguments rebuilt before it, items
  // in the order of the pickle, each object by the function registered for
  // its global (ForkingPickler::register_global), if any.
  static void rebuild_all(Object& o) {
    auto& v = o.variant();
    if (auto* list = std::get_if<Object::List>(&v)) {
      for (Object& item : *list) rebuild_all(item);
    } else if (auto* tuple = std::get_if<Object::Tuple>(&v)) {
      for (Object& item : tuple->items) rebuild_all(item);
    } else if (auto* dict = std::get_if<Object::Dict>(&v)) {
      for (auto& [key, value] : *dict) rebuild_all(value);  // the keys are str
    } else if (const Object::Reduced* held = o.reduced()) {
      Object::Reduced r = *held;
      for (Object& arg : r.args) rebuild_all(arg);
      ForkingPickler::Rebuild rebuild = ForkingPickler::_rebuild_of(r.callable.module, r.callable.qualname);
      o = rebuild ? rebuild(Object(std::move(r))) : Object(std::move(r));
    }
  }

  bool dispatch(char code) {
    switch (code) {
      case op::PROTO:
        if (read_uint(1) > static_cast<std::uint64_t>(HIGHEST_PROTOCOL)) return false;
        return true;
      case op::FRAME: read_length(8); return true;
      case op::NONE: push(None{}); return true;
      case op::NEWTRUE: push(true); return true;
      case op::NEWFALSE: push(false); return true;
      case op::BININT:
        push(static_cast<std::int64_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(read_uint(4)))));
        return true;
      case op::BININT1: push(static_cast<std::int64_t>(read_uint(1))); return true;
      case op::BININT2: push(static_cast<std::int64_t>(read_uint(2))); return true;
      case op::LONG1: push(Object(decode_long(read(read_length(1))))); return true;
      case op::BINFLOAT: push(read_binfloat()); return true;
      case op::SHORT_BINUNICODE: case op::BINUNICODE: case op::BINUNICODE8: {
        int width = code == op::SHORT_BINUNICODE ? 1 : code == op::BINUNICODE ? 4 : 8;
        std::string_view text = read(read_length(width));
        charge(text.size() / 64);
        push(std::string(text));
        return true;
      }
      case op::SHORT_BINBYTES: case op::BINBYTES: case op::BINBYTES8: {
        int width = code == op::SHORT_BINBYTES ? 1 : code == op::BINBYTES ? 4 : 8;
        std::string_view octets = read(read_length(width));
        charge(octets.size() / 64);
        push(Bytes(std::string(octets)));
        return true;
      }
      case op::EMPTY_TUPLE: push_container(Object(Object::Tuple{}), 0); return true;
      case op::TUPLE1: case op::TUPLE2: case op::TUPLE3: {
        std::size_t n = static_cast<std::size_t>(code - op::TUPLE1) + 1;
        if (stack_.size() < fence() + n) return false;
        int depth = 0;
        Object::Tuple t;
        t.items.reserve(n);
        for (std::size_t i = stack_.size() - n; i < stack_.size(); ++i) {
          depth = std::max(depth, stack_[i].depth);
          t.items.push_back(std::move(stack_[i].value));
        }
        stack_.resize(stack_.size() - n);
        push_container(Object(std::move(t)), depth);
        return true;
      }
      case op::MARK:
        marks_.push_back(stack_.size());
        read_atom_run();
        return true;
      case op::TUPLE: {
        int depth = 0;
        std::vector<Object> items = pop_mark(depth);
        push_container(Object(Object::Tuple{std::move(items)}), depth);
        return true;
      }
      case op::EMPTY_LIST: push_container(Object(Object::List{}), 0); return true;
      case op::APPEND: {
        Slot item = pop();
        if (stack_.size() <= fence()) return false;
        Slot& list = stack_.back();
        auto* items = std::get_if<Object::List>(&list.value.variant());
        if (items == nullptr || item.depth + 1 > kMaxDepth) return false;
        list.depth = std::max(list.depth, item.depth + 1);
        items->push_back(std::move(item.value));
        return true;
      }
      case op::APPENDS: {
        int depth = 0;
        std::vector<Object> more = pop_mark(depth);
        if (stack_.size() <= fence()) return false;
        Slot& list = stack_.back();
        auto* items = std::get_if<Object::List>(&list.value.variant());
        if (items == nullptr || depth + 1 > kMaxDepth) return false;
        list.depth = std::max(list.depth, depth + 1);
        if (items->empty()) {
          *items = std::move(more);
        } else {
          for (auto& item : more) items->push_back(std::move(item));
        }
        return true;
      }
      case op::EMPTY_DICT: push_container(Object(Object::Dict{}), 0); return true;
      case op::SETITEM: return set_items(false);
      case op::SETITEMS: return set_items(true);
      case op::REDUCE: return reduce();
      case op::MEMOIZE: memo_put(memo_.size()); return true;
      case op::BINPUT: memo_put(read_uint(1)); return true;
      case op::LONG_BINPUT: memo_put(read_uint(4)); return true;
      case op::BINGET: memo_get(read_uint(1)); return true;
      case op::LONG_BINGET: memo_get(read_uint(4)); return true;
      case op::STACK_GLOBAL: {
        Slot qualname = pop();
        Slot module = pop();
        const auto* q = std::get_if<std::string>(&qualname.value.variant());
        const auto* m = std::get_if<std::string>(&module.value.variant());
        if (q == nullptr || m == nullptr || !ForkingPickler::is_allowed(*m, *q)) return false;
        push(Object(Object::Global{*m, *q}));
        return true;
      }
      default:
        return false;
    }
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  std::size_t budget_;
  std::uint64_t serial_ = 0;
  std::size_t reduced_ = 0;  // REDUCEs read: rebuild_all has work to do
  std::vector<Slot> stack_;
  std::vector<std::size_t> marks_;
  // A memo entry: which stack slot, and which push put the value there.  No
  // default values: the memo's inline array is then left unset, not cleared,
  // at every load (UnpicklerMemo reads only the entries it set).
  struct MemoEntry {
    std::size_t at;
    std::uint64_t serial;
  };
  UnpicklerMemo<MemoEntry> memo_;  // index -> (stack slot, serial)

  // The stack and marks of this thread's last DirectUnpickler, kept for its
  // next one: loading a small pickle then allocates nothing for them.  An
  // unpickler takes them while it runs (one nested in it would start with
  // empty ones) and gives them back at the end, unless they grew beyond
  // kKeptSlots: one huge pickle does not stay allocated for good.
  struct Scratch {
    std::vector<Slot> stack;
    std::vector<std::size_t> marks;
  };
  static Scratch& scratch() {
    thread_local Scratch s;
    return s;
  }
  static constexpr std::size_t kKeptSlots = 1024;
  static constexpr std::size_t kDirectDictItems = 32;  // bigger dicts: the Unpickler
};

// ================================================================ dis
// Python: pickletools.dis.  The opcode table is pickletools.opcodes: the byte, the
// name, how the argument is encoded, the protocol that introduced it, and whether it
// consumes / pushes a MARK (for the indentation and the "(MARK at N)" notes).
enum class DisArg {
  none, bytearray8, bytes1, bytes4, bytes8, decimalnl_long, decimalnl_short, float8, floatnl, int4, long1, long4, string1, string4, stringnl, stringnl_noescape, stringnl_noescape_pair, uint1, uint2, uint4, uint8, unicodestring1, unicodestring4, unicodestring8, unicodestringnl
};

struct OpcodeInfo {
  char code;
  const char* name;
  DisArg arg;
  int proto;
  bool pops_mark;
  bool pushes_mark;
};

constexpr OpcodeInfo kOpcodes[] = {
    {'I', "INT", DisArg::decimalnl_short, 0, false, false},
    {'J', "BININT", DisArg::int4, 1, false, false},
    {'K', "BININT1", DisArg::uint1, 1, false, false},
    {'M', "BININT2", DisArg::uint2, 1, false, false},
    {'L', "LONG", DisArg::decimalnl_long, 0, false, false},
    {'\x8a', "LONG1", DisArg::long1, 2, false, false},
    {'\x8b', "LONG4", DisArg::long4, 2, false, false},
    {'S', "STRING", DisArg::stringnl, 0, false, false},
    {'T', "BINSTRING", DisArg::string4, 1, false, false},
    {'U', "SHORT_BINSTRING", DisArg::string1, 1, false, false},
    {'B', "BINBYTES", DisArg::bytes4, 3, false, false},
    {'C', "SHORT_BINBYTES", DisArg::bytes1, 3, false, false},
    {'\x8e', "BINBYTES8", DisArg::bytes8, 4, false, false},
    {'\x96', "BYTEARRAY8", DisArg::bytearray8, 5, false, false},
    {'\x97', "NEXT_BUFFER", DisArg::none, 5, false, false},
    {'\x98', "READONLY_BUFFER", DisArg::none, 5, false, false},
    {'N', "NONE", DisArg::none, 0, false, false},
    {'\x88', "NEWTRUE", DisArg::none, 2, false, false},
    {'\x89', "NEWFALSE", DisArg::none, 2, false, false},
    {'V', "UNICODE", DisArg::unicodestringnl, 0, false, false},
    {'\x8c', "SHORT_BINUNICODE", DisArg::unicodestring1, 4, false, false},
    {'X', "BINUNICODE", DisArg::unicodestring4, 1, false, false},
    {'\x8d', "BINUNICODE8", DisArg::unicodestring8, 4, false, false},
    {'F', "FLOAT", DisArg::floatnl, 0, false, false},
    {'G', "BINFLOAT", DisArg::float8, 1, false, false},
    {']', "EMPTY_LIST", DisArg::none, 1, false, false},
    {'a', "APPEND", DisArg::none, 0, false, false},
    {'e', "APPENDS", DisArg::none, 1, true, false},
    {'l', "LIST", DisArg::none, 0, true, false},
    {')', "EMPTY_TUPLE", DisArg::none, 1, false, false},
    {'t', "TUPLE", DisArg::none, 0, true, false},
    {'\x85', "TUPLE1", DisArg::none, 2, false, false},
    {'\x86', "TUPLE2", DisArg::none, 2, false, false},
    {'\x87', "TUPLE3", DisArg::none, 2, false, false},
    {'}', "EMPTY_DICT", DisArg::none, 1, false, false},
    {'d', "DICT", DisArg::none, 0, true, false},
    {'s', "SETITEM", DisArg::none, 0, false, false},
    {'u', "SETITEMS", DisArg::none, 1, true, false},
    {'\x8f', "EMPTY_SET", DisArg::none, 4, false, false},
    {'\x90', "ADDITEMS", DisArg::none, 4, true, false},
    {'\x91', "FROZENSET", DisArg::none, 4, true, false},
    {'0', "POP", DisArg::none, 0, false, false},
    {'2', "DUP", DisArg::none, 0, false, false},
    {'(', "MARK", DisArg::none, 0, false, true},
    {'1', "POP_MARK", DisArg::none, 1, true, false},
    {'g', "GET", DisArg::decimalnl_short, 0, false, false},
    {'h', "BINGET", DisArg::uint1, 1, false, false},
    {'j', "LONG_BINGET", DisArg::uint4, 1, false, false},
    {'p', "PUT", DisArg::decimalnl_short, 0, false, false},
    {'q', "BINPUT", DisArg::uint1, 1, false, false},
    {'r', "LONG_BINPUT", DisArg::uint4, 1, false, false},
    {'\x94', "MEMOIZE", DisArg::none, 4, false, false},
    {'\x82', "EXT1", DisArg::uint1, 2, false, false},
    {'\x83', "EXT2", DisArg::uint2, 2, false, false},
    {'\x84', "EXT4", DisArg::int4, 2, false, false},
    {'c', "GLOBAL", DisArg::stringnl_noescape_pair, 0, false, false},
    {'\x93', "STACK_GLOBAL", DisArg::none, 4, false, false},
    {'R', "REDUCE", DisArg::none, 0, false, false},
    {'b', "BUILD", DisArg::none, 0, false, false},
    {'i', "INST", DisArg::stringnl_noescape_pair, 0, true, false},
    {'o', "OBJ", DisArg::none, 1, true, false},
    {'\x81', "NEWOBJ", DisArg::none, 2, false, false},
    {'\x92', "NEWOBJ_EX", DisArg::none, 4, false, false},
    {'\x80', "PROTO", DisArg::uint1, 2, false, false},
    {'.', "STOP", DisArg::none, 0, false, false},
    {'\x95', "FRAME", DisArg::uint8, 4, false, false},
    {'P', "PERSID", DisArg::stringnl_noescape, 0, false, false},
    {'Q', "BINPERSID", DisArg::none, 1, false, false},
};

const OpcodeInfo* find_opcode(char code) {
  for (const auto& info : kOpcodes) {
    if (info.code == code) return &info;
  }
  return nullptr;
}

// Python's int() of arbitrary size, from little-endian two's complement (LONG1/4).
std::string long_to_decimal(std::string_view data) {
  if (data.empty()) return "0";
  std::vector<unsigned char> mag(data.begin(), data.end());
  bool negative = mag.back() & 0x80;
  if (negative) {  // two's complement: invert and add one
    unsigned carry = 1;
    for (auto& byte : mag) {
      unsigned v = static_cast<unsigned char>(~byte) + carry;
      byte = static_cast<unsigned char>(v);
      carry = v >> 8;
    }
  }
  std::string digits;
  // Repeated division by 10 of the big-endian magnitude.
  std::vector<unsigned char> big(mag.rbegin(), mag.rend());
  while (!big.empty()) {
    unsigned rem = 0;
    std::vector<unsigned char> quotient;
    for (unsigned char byte : big) {
      unsigned cur = rem * 256 + byte;
      unsigned char q = static_cast<unsigned char>(cur / 10);
      rem = cur % 10;
      if (!quotient.empty() || q != 0) quotient.push_back(q);
    }
    digits += static_cast<char>('0' + rem);
    big = std::move(quotient);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (negative && digits != "0") digits += '-';
  return std::string(digits.rbegin(), digits.rend());
}

class Disassembler {
 public:
  explicit Disassembler(std::string_view data) : data_(data) {}

  std::string run() {
    int maxproto = -1;
    for (;;) {
      std::size_t pos = pos_;
      if (pos_ >= data_.size()) throw ValueError("pickle exhausted before seeing STOP");
      char code = data_[pos_++];
      const OpcodeInfo* info = find_opcode(code);
      if (info == nullptr) {
        char text[64];
        std::snprintf(text, sizeof text, "at position %zu, opcode b'\\x%02x' unknown", pos,
                      static_cast<unsigned char>(code));
        if (code >= 0x20 && code < 0x7f) {
          std::snprintf(text, sizeof text, "at position %zu, opcode b'%c' unknown", pos, code);
        }
        throw ValueError(text);
      }
      std::string arg = read_arg(*info);
      char head[32];
      std::snprintf(head, sizeof head, "%5zu: ", pos);
      std::string line = head;
      std::string shown;
      auto c = static_cast<unsigned char>(code);
      if (c >= 0x20 && c < 0x7f) {
        shown = std::string(1, code);
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        shown = hex;
      }
      shown.resize(std::max<std::size_t>(shown.size(), 4), ' ');
      line += shown + " " + std::string(4 * marks_.size(), ' ') + info->name;
      maxproto = std::max(maxproto, info->proto);

      std::string markmsg;
      bool error = false;
      std::string errormsg;
      if (info->pops_mark) {
        if (!marks_.empty()) {
          markmsg = "(MARK at " + std::to_string(marks_.back()) + ")";
          marks_.pop_back();
        } else {
          errormsg = markmsg = "no MARK exists on stack";
          error = true;
        }
      }
      std::string name = info->name;
      if (name == "PUT" || name == "BINPUT" || name == "LONG_BINPUT" || name == "MEMOIZE") {
        std::string index = name == "MEMOIZE" ? std::to_string(memo_.size()) : arg;
        if (name == "MEMOIZE") markmsg = "(as " + index + ")";
        if (memo_.count(index)) {
          error = true;
          errormsg = "memo key " + arg + " already defined";
        }
        memo_.insert(index);
      } else if (name == "GET" || name == "BINGET" || name == "LONG_BINGET") {
        if (!memo_.count(arg)) {
          error = true;
          errormsg = "memo key " + arg + " has never been stored into";
        }
      }
      if (info->arg != DisArg::none || !markmsg.empty()) {
        if (name.size() < 10) line += std::string(10 - name.size(), ' ');
        if (info->arg != DisArg::none) line += " " + arg;
        if (!markmsg.empty()) line += " " + markmsg;
      }
      out_ += line + "\n";
      if (error) throw ValueError(errormsg);
      if (info->pushes_mark) marks_.push_back(pos);
      if (code == op::STOP) break;
    }
    out_ += "highest protocol among opcodes = " + std::to_string(maxproto) + "\n";
    return out_;
  }

 private:
  std::string_view take(std::size_t n, const char* what) {
    if (n > data_.size() - pos_) {
      throw ValueError(std::string("expected ") + std::to_string(n) + " bytes in a " + what +
                       ", but only " + std::to_string(data_.size() - pos_) + " remain");
    }
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string_view line(const char* what) {
    std::size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) {
      throw ValueError(std::string("no newline found when trying to read ") + what);
    }
    std::string_view out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  std::string read_arg(const OpcodeInfo& info) {
    switch (info.arg) {
      case DisArg::none: return "";
      case DisArg::uint1: return std::to_string(get_le(take(1, "uint1"), 1));
      case DisArg::uint2: return std::to_string(get_le(take(2, "uint2"), 2));
      case DisArg::uint4: return std::to_string(get_le(take(4, "uint4"), 4));
      case DisArg::uint8: return std::to_string(get_le(take(8, "uint8"), 8));
      case DisArg::int4:
        return std::to_string(static_cast<std::int32_t>(static_cast<std::uint32_t>(get_le(take(4, "int4"), 4))));
      case DisArg::long1: {
        std::size_t n = get_le(take(1, "long1"), 1);
        return long_to_decimal(take(n, "long1"));
      }
      case DisArg::long4: {
        auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_le(take(4, "long4"), 4)));
        if (n < 0) throw ValueError("long4 byte count < 0: " + std::to_string(n));
        return long_to_decimal(take(static_cast<std::size_t>(n), "long4"));
      }
      case DisArg::float8: {
        std::string_view b = take(8, "float8");
        std::uint64_t bits = 0;
        for (char ch : b) bits = (bits << 8) | static_cast<unsigned char>(ch);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return float_repr(d);
      }
      case DisArg::floatnl: {
        std::string text(line("floatnl"));
        return float_repr(std::strtod(text.c_str(), nullptr));
      }
      case DisArg::decimalnl_short: {
        std::string text(line("decimalnl_short"));
        if (text == "00") return "False";
        if (text == "01") return "True";
        return std::to_string(std::strtoll(text.c_str(), nullptr, 10));
      }
      case DisArg::decimalnl_long: {
        std::string text(line("decimalnl_long"));
        if (!text.empty() && text.back() == 'L') text.pop_back();
        return std::to_string(std::strtoll(text.c_str(), nullptr, 10));
      }
      case DisArg::bytes1: return bytes_repr(take(get_le(take(1, "bytes1"), 1), "bytes1"));
      case DisArg::bytes4: return bytes_repr(take(get_le(take(4, "bytes4"), 4), "bytes4"));
      case DisArg::bytes8: return bytes_repr(take(get_le(take(8, "bytes8"), 8), "bytes8"));
      case DisArg::bytearray8:
        return Object(Bytearray(std::string(take(get_le(take(8, "bytearray8"), 8), "bytearray8")))).repr();
      case DisArg::unicodestring1: return str_repr(std::string(take(get_le(take(1, "unicodestring1"), 1), "unicodestring1")));
      case DisArg::unicodestring4: return str_repr(std::string(take(get_le(take(4, "unicodestring4"), 4), "unicodestring4")));
      case DisArg::unicodestring8: return str_repr(std::string(take(get_le(take(8, "unicodestring8"), 8), "unicodestring8")));
      case DisArg::string1: return str_repr(latin1_to_utf8(std::string(take(get_le(take(1, "string1"), 1), "string1"))));
      case DisArg::string4: {
        auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_le(take(4, "string4"), 4)));
        if (n < 0) throw ValueError("string4 byte count < 0: " + std::to_string(n));
        return str_repr(latin1_to_utf8(std::string(take(static_cast<std::size_t>(n), "string4"))));
      }
      case DisArg::stringnl: return str_repr(std::string(line("stringnl")));
      case DisArg::stringnl_noescape: return str_repr(std::string(line("stringnl_noescape")));
      case DisArg::stringnl_noescape_pair: {
        std::string first(line("stringnl_noescape_pair"));
        std::string second(line("stringnl_noescape_pair"));
        return str_repr(first + " " + second);
      }
      case DisArg::unicodestringnl: return str_repr(std::string(line("unicodestringnl")));
    }
    return "";
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  std::string out_;
  std::vector<std::size_t> marks_;  // positions of the open MARKs
  std::set<std::string> memo_;      // the memo keys defined so far, as printed
};

// ================================================================ runs of ints
// [pickle-int-run]
// loads_with_ints (pickle.hpp): a reader for the few opcodes of a Pool's
// task and result messages, in which the one tuple or list of ints (the
// chunk, the results) goes into a caller's vector in one tight loop, with no
// Object per int.  Anything it does not expect makes it give up (nullopt),
// and the caller reads the pickle with loads().  Bounded as loads() is: the
// ints are at most one per 2 input bytes; containers other than the run are
// at most kMaxContainers, so the small Objects it builds stay small.
class IntRunReader {
 public:
  IntRunReader(std::string_view data, std::vector<std::int64_t>& ints)
      : data_(reinterpret_cast<const unsigned char*>(data.data())), size_(data.size()), ints_(ints) {
    // Room for what a task or a result message holds (a task has about a
    // dozen items on the stack at most, four memoized names, two open
    // MARKs), so that the vectors are allocated once each, not grown
    // (1, 2, 4, 8...) for every message.
    stack_.reserve(16);
    marks_.reserve(4);
    memo_.reserve(8);
  }

  struct Gone {};  // thrown to give up

  std::optional<Object> load() {
    try {
      while (pos_ < size_) {
        char code = static_cast<char>(data_[pos_++]);
        if (code == op::STOP) {
          if (stack_.size() != 1 || !marks_.empty()) return std::nullopt;
          return std::move(stack_.back());
        }
        step(code);
      }
    } catch (const Gone&) {
    }
    return std::nullopt;
  }

 private:
  static constexpr int kMaxContainers = 64;

  std::size_t need(std::size_t n) {
    if (n > size_ - pos_) throw Gone{};
    std::size_t at = pos_;
    pos_ += n;
    return at;
  }
  std::uint32_t uint_at(std::size_t at, int nbytes) const {
    std::uint32_t v = 0;
    for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | data_[at + static_cast<std::size_t>(i)];
    return v;
  }
  // The int opcode at p (BININT1, BININT2 or BININT) with its bytes, of
  // which `left` are there: its value into `value` and its size (2, 3 or
  // 5), or 0 for any other opcode or one cut short.
  static std::size_t read_int(const unsigned char* p, std::size_t left, std::int64_t& value) {
    switch (static_cast<char>(*p)) {
      case op::BININT1:
        if (left < 2) return 0;
        value = p[1];
        return 2;
      case op::BININT2:
        if (left < 3) return 0;
        value = p[1] | (p[2] << 8);
        return 3;
      case op::BININT: {
        if (left < 5) return 0;
        std::uint32_t u = p[1] | (p[2] << 8) | (p[3] << 16) | (static_cast<std::uint32_t>(p[4]) << 24);
        value = static_cast<std::int32_t>(u);
        return 5;
      }
      default:
        return 0;
    }
  }
  // The ints from pos_ on, up to the first other opcode (or one cut short),
  // appended to ints_.  A block of ints is decoded into a stack buffer with
  // no bounds check per int, then appended at once: `limit` ints of at most
  // 5 bytes each (the longest) cannot pass the end.  The last few bytes, and
  // a FRAME that starts inside the run, take the checked step.  About a
  // dozen instructions per int.
  void read_run_ints() {
    const unsigned char* p = data_ + pos_;
    const unsigned char* end = data_ + size_;
    if (ints_.capacity() == 0) ints_.reserve((size_ - pos_) / 2);  // an int takes 2 bytes at least
    constexpr std::size_t kBlock = 512;
    std::int64_t block[kBlock];
    while (true) {
      std::size_t limit = std::min(kBlock, static_cast<std::size_t>(end - p) / 5);
      std::size_t k = 0;
      for (; k < limit; ++k) {
        std::size_t size = read_int(p, 5, block[k]);  // 5 bytes are there
        if (size == 0) break;
        p += size;
      }
      ints_.insert(ints_.end(), block, block + k);
      if (k == limit && limit > 0) continue;
      // The checked step: one int or FRAME, unless it is cut short.
      std::size_t left = static_cast<std::size_t>(end - p);
      if (left == 0) break;
      std::int64_t value;
      if (std::size_t size = read_int(p, left, value); size != 0) {
        ints_.push_back(value);
        p += size;
      } else if (static_cast<char>(*p) == op::FRAME && left >= 9) {  // a frame may start inside the run
        p += 9;
      } else {
        break;
      }
    }
    pos_ = static_cast<std::size_t>(p - data_);
  }
  Object pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) throw Gone{};
    Object top = std::move(stack_.back());
    stack_.pop_back();
    return top;
  }
  std::vector<Object> pop_mark() {
    if (marks_.empty()) throw Gone{};
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Object> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                              std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  void push_container(Object value) {
    if (++containers_ > kMaxContainers) throw Gone{};
    stack_.push_back(std::move(value));
  }
  Object::List& list_below() {
    if (stack_.empty()) throw Gone{};
    auto* list = std::get_if<Object::List>(&stack_.back().variant());
    if (list == nullptr) throw Gone{};
    return *list;
  }
  bool is_run(const Object& o) const {
    return run_taken_ && o.global() != nullptr && *o.global() == int_run_placeholder(false);
  }

  // MARK followed by ints: the run, closed by TUPLE (the chunk) or by APPENDS
  // onto the empty list just below (the results; later batches of the same
  // list continue it).  Only one run per pickle.
  bool try_run() {
    bool onto_run_list = run_list_open_ && !stack_.empty() && is_run(stack_.back());
    bool onto_empty_list = !run_taken_ && !stack_.empty() && is_empty_list(stack_.back());
    if (!onto_run_list && run_taken_) return false;
    std::size_t start = pos_, first = ints_.size();
    read_run_ints();
    char close = pos_ < size_ ? static_cast<char>(data_[pos_]) : op::STOP;
    if (ints_.size() == first) close = op::STOP;  // no ints: not a run
    if (close == op::APPENDS && (onto_run_list || onto_empty_list)) {
      ++pos_;
      if (onto_empty_list) stack_.back() = Object(int_run_placeholder(false));
      run_taken_ = run_list_open_ = true;
      return true;
    }
    if (close == op::TUPLE && !onto_run_list) {
      ++pos_;
      stack_.emplace_back(int_run_placeholder(true));
      run_taken_ = true;
      return true;
    }
    // Not a run (the ints of a task's (job, i, ...) after its MARK): read
    // them again one at a time.
    pos_ = start;
    ints_.resize(first);
    return false;
  }
  static bool is_empty_list(const Object& o) {
    const auto* list = std::get_if<Object::List>(&o.variant());
    return list != nullptr && list->empty();
  }

  void step(char code) {
    if (code != op::MARK && code != op::APPENDS && code != op::FRAME && code != op::MEMOIZE) {
      run_list_open_ = false;  // the run's list is complete
    }
    switch (code) {
      case op::PROTO:
        if (data_[need(1)] > HIGHEST_PROTOCOL) throw Gone{};
        return;
      case op::FRAME: need(8); return;
      case op::MEMOIZE:
        // Only atoms and globals may be fetched again (a BINGET of the same
        // str): a container could be filled after it was memoized.
        if (stack_.empty()) throw Gone{};
        memo_.push_back(stack_.back().global() != nullptr || std::holds_alternative<std::string>(stack_.back().variant())
                            ? std::optional<Object>(stack_.back())
                            : std::nullopt);
        if (is_run(stack_.back())) memo_.back().reset();
        return;
      case op::BINGET: {
        std::size_t index = data_[need(1)];
        if (index >= memo_.size() || !memo_[index]) throw Gone{};
        stack_.push_back(*memo_[index]);
        return;
      }
      case op::NONE: stack_.emplace_back(); return;
      case op::NEWTRUE: stack_.emplace_back(true); return;
      case op::NEWFALSE: stack_.emplace_back(false); return;
      case op::BININT1: stack_.emplace_back(static_cast<std::int64_t>(data_[need(1)])); return;
      case op::BININT2: stack_.emplace_back(static_cast<std::int64_t>(uint_at(need(2), 2))); return;
      case op::BININT:
        stack_.emplace_back(static_cast<std::int64_t>(static_cast<std::int32_t>(uint_at(need(4), 4))));
        return;
      case op::SHORT_BINUNICODE: {
        std::size_t n = data_[need(1)];
        std::size_t at = need(n);
        stack_.emplace_back(std::string(reinterpret_cast<const char*>(data_) + at, n));
        return;
      }
      case op::STACK_GLOBAL: {
        Object qualname = pop(), module = pop();
        const auto* q = std::get_if<std::string>(&qualname.variant());
        const auto* m = std::get_if<std::string>(&module.variant());
        if (q == nullptr || m == nullptr || !ForkingPickler::is_allowed(*m, *q)) throw Gone{};
        stack_.emplace_back(Object::Global{*m, *q});
        return;
      }
      case op::MARK:
        marks_.push_back(stack_.size());
        if (try_run()) marks_.pop_back();
        return;
      case op::EMPTY_TUPLE: push_container(Object::Tuple{}); return;
      case op::TUPLE1: case op::TUPLE2: case op::TUPLE3: {
        std::size_t n = static_cast<std::size_t>(code - op::TUPLE1) + 1;
        if (stack_.size() < (marks_.empty() ? 0 : marks_.back()) + n) throw Gone{};
        Object::Tuple t;
        t.items.assign(std::make_move_iterator(stack_.end() - static_cast<std::ptrdiff_t>(n)),
                       std::make_move_iterator(stack_.end()));
        stack_.resize(stack_.size() - n);
        return push_container(std::move(t));
      }
      case op::TUPLE: return push_container(Object::Tuple{pop_mark()});
      case op::EMPTY_LIST: return push_container(Object::List{});
      case op::APPEND: {
        Object item = pop();
        list_below().push_back(std::move(item));
        return;
      }
      case op::APPENDS: {
        std::vector<Object> items = pop_mark();
        Object::List& list = list_below();
        for (Object& item : items) list.push_back(std::move(item));
        return;
      }
      case op::EMPTY_DICT: return push_container(Object::Dict{});
      default: throw Gone{};
    }
  }

  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::vector<std::int64_t>& ints_;
  std::vector<Object> stack_;
  std::vector<std::size_t> marks_;
  std::vector<std::optional<Object>> memo_;
  int containers_ = 0;
  bool run_taken_ = false;     // the run has been read (one per pickle)
  bool run_list_open_ = false;  // it is a list that later batches may continue
};
// [pickle-int-run]

}  // namespace

// ================================================================ a manager's calls
// [pickle-call-fast-path]
// dump_call_request, load_call_request, dump_call_reply, load_call_reply
// (pickle.hpp): the request `(ident, methodname, args, kwds)` of a proxy call
// and its reply `(kind, value)`, when every value in them is a small atom.
// For those, the Pickler writes these opcodes and nothing else (protocol 4):
//
//   PROTO 4  FRAME <length of what follows>
//   request  MARK <str ident> <str methodname> <args> EMPTY_DICT MEMOIZE TUPLE MEMOIZE STOP
//   reply    <str kind> <atom value> TUPLE2 MEMOIZE STOP
//   args     EMPTY_TUPLE, or 1 to 3 atoms TUPLE1/TUPLE2/TUPLE3 MEMOIZE,
//            or MARK <4 or more atoms> TUPLE MEMOIZE
//   atom     NONE, NEWTRUE, NEWFALSE, BININT1/BININT2/BININT (put_int32), or a str
//   str      SHORT_BINUNICODE <size> <text> MEMOIZE, or BINGET <index> when an
//            equal str was saved before (the Pickler's IdentityMemo)
//
// CallWriter writes exactly that and CallReader reads exactly that (the
// PROTO's number may be any the Unpickler reads, the FRAME may be missing, a
// MEMOIZE may follow any value): the bytes are those of dump(), and what
// the reader builds is what loads() builds from the same bytes.  At anything
// else they give up and the caller runs dump() or loads().  A message holds
// at most kCallMaxArgs + 2 strs of at most 255 bytes: its frame never
// reaches kFrameSizeTarget (the Pickler would then cut it), and a memo
// index always fits BINGET's one byte.  tests/test_reduction.cpp
// (TestPickle.CallFastPathsMatchTheGenericOnes) compares both ways with
// dumps() and loads().
// [pickle-call-fast-path]

namespace {

// A str of a call's pickle and its memo index (the memo's entries: the
// reader's memo marks an entry that is not a str with a null `text`).
struct CallStr {
  const char* text;
  std::size_t size;
  std::uint64_t index;
};
constexpr std::size_t kCallMaxStrs = kCallMaxArgs + 2;  // ident, methodname, args

// The most bytes a call's pickle takes: PROTO, the FRAME header, two MARKs,
// kCallMaxStrs strs (SHORT_BINUNICODE, size, 255 bytes, MEMOIZE; any other
// atom takes fewer), and the opcodes that close it (at most 7).
constexpr std::size_t kCallMaxBytes = 2 + kFrameHeaderSize + 2 + kCallMaxStrs * (3 + 0xff) + 7;

class CallWriter {
 public:
  // The pickle is written into an array on the stack, then appended to the
  // caller's string at once by finish(): no check of the string's room per
  // opcode, and nothing to undo when the writer gives up.
  CallWriter() {
    buf_[0] = op::PROTO;
    buf_[1] = static_cast<char>(DEFAULT_PROTOCOL);
    w_ = buf_.data() + 2 + kFrameHeaderSize;  // after the FRAME header, filled in by finish()
  }
  void opcode(char code) { *w_++ = code; }
  void memoize() {
    *w_++ = op::MEMOIZE;
    ++memo_size_;
  }
  // STOP, the FRAME header (its length: what follows it), and the whole
  // pickle appended to `out`.
  void finish(std::string& out) {
    *w_++ = op::STOP;
    char* frame = buf_.data() + 2;
    frame[0] = op::FRAME;
    put_le_at(frame + 1, static_cast<std::uint64_t>(w_ - frame) - kFrameHeaderSize, 8);
    out.append(buf_.data(), static_cast<std::size_t>(w_ - buf_.data()));
  }

  // Python: save_str, with the memo's BINGET for a str saved before.
  bool str(std::string_view s) {
    if (s.size() > 0xff) return false;
    for (std::size_t i = 0; i < strs_count_; ++i) {
      if (std::string_view(strs_[i].text, strs_[i].size) == s) {
        w_[0] = op::BINGET;
        w_[1] = static_cast<char>(strs_[i].index);
        w_ += 2;
        return true;
      }
    }
    if (strs_count_ == kCallMaxStrs) return false;
    strs_[strs_count_++] = CallStr{s.data(), s.size(), memo_size_};
    w_[0] = op::SHORT_BINUNICODE;
    w_[1] = static_cast<char>(s.size());
    std::memcpy(w_ + 2, s.data(), s.size());
    w_ += 2 + s.size();
    memoize();
    return true;
  }

  // A small atom, as Pickler::save writes it; false for any other value.
  bool atom(const Object& value) {
    const Object::Variant& v = value.variant();
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
      std::size_t written = put_int32(w_, *i);
      w_ += written;
      return written != 0;
    }
    if (const auto* s = std::get_if<std::string>(&v)) return str(*s);
    if (std::holds_alternative<None>(v)) {
      opcode(op::NONE);
      return true;
    }
    if (const auto* b = std::get_if<bool>(&v)) {
      opcode(*b ? op::NEWTRUE : op::NEWFALSE);
      return true;
    }
    return false;
  }

  // Python: save_tuple of the args.
  bool args(const Args& args) {
    std::size_t n = args.size();
    if (n == 0) {
      opcode(op::EMPTY_TUPLE);  // not memoized, as CPython's save_tuple does
      return true;
    }
    if (n > kCallMaxArgs) return false;
    if (n > 3) opcode(op::MARK);
    for (const Object& arg : args) {
      if (!atom(arg)) return false;
    }
    opcode(n > 3 ? op::TUPLE : static_cast<char>(op::TUPLE1 + (n - 1)));
    memoize();
    return true;
  }

 private:
  std::array<char, kCallMaxBytes> buf_;  // unset beyond w_
  char* w_;
  std::uint64_t memo_size_ = 0;
  std::array<CallStr, kCallMaxStrs> strs_;  // unset beyond strs_count_
  std::size_t strs_count_ = 0;
};

class CallReader {
 public:
  explicit CallReader(std::string_view data) : data_(data) {}

  // PROTO (a protocol loads() reads), then the FRAME if there is one; its
  // length must fit in what follows, as loads() checks it.
  bool begin() {
    if (!next(op::PROTO) || pos_ == data_.size() ||
        static_cast<unsigned char>(data_[pos_]) > HIGHEST_PROTOCOL) {
      return false;
    }
    ++pos_;
    if (next(op::FRAME)) {
      if (data_.size() - pos_ < 8) return false;
      std::uint64_t length = get_le(data_.substr(pos_, 8), 8);
      pos_ += 8;
      if (length > data_.size() - pos_) return false;
    }
    return true;
  }

  // Whether the next opcode is `code`; if so, it is read.
  bool next(char code) {
    if (pos_ == data_.size() || data_[pos_] != code) return false;
    ++pos_;
    return true;
  }

  // A str: SHORT_BINUNICODE, or BINGET of a str memoized before.  `text`
  // is a view into the data.
  bool str(std::string_view& text) {
    if (data_.size() - pos_ < 2) return false;
    auto arg = static_cast<unsigned char>(data_[pos_ + 1]);
    if (data_[pos_] == op::SHORT_BINUNICODE) {
      if (data_.size() - pos_ - 2 < arg) return false;
      text = data_.substr(pos_ + 2, arg);
      pos_ += 2 + arg;
      return memoize_if_next(text.data(), text.size());
    }
    if (data_[pos_] == op::BINGET) {
      if (arg >= memo_count_ || memo_[arg].text == nullptr) return false;  // not set, or not a str
      text = std::string_view(memo_[arg].text, memo_[arg].size);
      pos_ += 2;
      return memoize_if_next(text.data(), text.size());
    }
    return false;
  }

  // A str into `into`, reusing its room when it holds a str already, and
  // left as it is when it holds this text (a client calls the same method
  // of the same object again and again: the request's ident and methodname
  // are usually those of the request before, whose tuple is reused).
  bool str(Object& into) {
    std::string_view text;
    if (!str(text)) return false;
    if (auto* s = std::get_if<std::string>(&into.variant())) {
      if (*s != text) s->assign(text);
    } else {
      into = Object(std::string(text));
    }
    return true;
  }

  // A small atom into `into`.
  bool atom(Object& into) {
    if (pos_ == data_.size()) return false;
    switch (data_[pos_]) {
      case op::NONE: into = Object(); break;
      case op::NEWTRUE: into = Object(true); break;
      case op::NEWFALSE: into = Object(false); break;
      case op::BININT1: return int_atom(into, 1);
      case op::BININT2: return int_atom(into, 2);
      case op::BININT: return int_atom(into, 4);
      case op::SHORT_BINUNICODE: case op::BINGET: return str(into);
      default: return false;
    }
    ++pos_;  // the opcode
    return memoize_if_next(nullptr, 0);
  }

  // BININT1 or BININT2 (unsigned, `width` 1 or 2) or BININT (signed, 4).
  bool int_atom(Object& into, int width) {
    auto size = static_cast<std::size_t>(width);
    if (data_.size() - pos_ - 1 < size) return false;
    std::uint64_t v = get_le(data_.substr(pos_ + 1, size), width);
    into = Object(width == 4 ? static_cast<std::int64_t>(static_cast<std::int32_t>(v)) : static_cast<std::int64_t>(v));
    pos_ += 1 + size;
    return memoize_if_next(nullptr, 0);
  }

  // The args' tuple, its atoms into `items` (emptied first).
  bool args(std::vector<Object>& items) {
    items.clear();
    if (next(op::EMPTY_TUPLE)) return memoize_if_next(nullptr, 0);
    bool marked = next(op::MARK);
    for (;;) {
      if (pos_ == data_.size()) return false;
      auto code = static_cast<unsigned char>(data_[pos_]);
      std::size_t n = items.size();
      if (marked ? code == static_cast<unsigned char>(op::TUPLE)
                 : n >= 1 && n <= 3 && code == static_cast<unsigned char>(op::TUPLE1) + (n - 1)) {
        ++pos_;
        return memoize_if_next(nullptr, 0);
      }
      if (n == kCallMaxArgs) return false;
      items.emplace_back();
      if (!atom(items.back())) return false;
    }
  }

  // An opcode that ends a value (EMPTY_DICT, TUPLE, TUPLE2), and the MEMOIZE after it if any.
  bool end_of_value(char code) { return next(code) && memoize_if_next(nullptr, 0); }

 private:
  // A MEMOIZE after the value just read: what the memo then holds at its
  // next index (`text` for a str, nullptr for anything else).
  bool memoize_if_next(const char* text, std::size_t size) {
    if (!next(op::MEMOIZE)) return true;
    if (memo_count_ == memo_.size()) return false;
    memo_[memo_count_++] = CallStr{text, size, 0};
    return true;
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  std::array<CallStr, 2 * kCallMaxStrs> memo_;  // unset beyond memo_count_
  std::size_t memo_count_ = 0;
};

}  // namespace

// ================================================================ public API

std::string dumps(const Object& obj, int protocol) {
  std::string out;
  dump(obj, out, protocol);
  return out;
}

Object loads(std::string_view data) {
  if (std::optional<Object> value = DirectUnpickler(data).load()) return std::move(*value);
  return Unpickler(data).load();
}

void dump(const Object& obj, std::string& file, int protocol) {
  if (protocol < 2 || protocol > HIGHEST_PROTOCOL) {
    throw PicklingError("pickle protocol " + std::to_string(protocol) +
                        " is not supported here (2 to 5 are)");
  }
  std::size_t before = file.size();
  try {
    Pickler(protocol, file).dump(obj);
  } catch (...) {
    file.resize(before);  // nothing of a pickle that failed
    throw;
  }
}

Object load(std::string_view& file) {
  DirectUnpickler direct(file);
  if (std::optional<Object> value = direct.load()) {
    file.remove_prefix(direct.consumed());
    return std::move(*value);
  }
  Unpickler unpickler(file);
  Object value = unpickler.load();
  file.remove_prefix(unpickler.consumed());
  return value;
}

std::string dis(std::string_view data) { return Disassembler(data).run(); }

Object::Global int_run_placeholder(bool tuple) { return Object::Global{"", tuple ? "<int tuple>" : "<int list>"}; }

std::string dumps_with_items(const Object& obj, const Object* items, std::size_t n) {
  std::string out;
  Pickler(DEFAULT_PROTOCOL, out).dump_with_run(obj, items, nullptr, n);
  return out;
}

std::string dumps_with_ints(const Object& obj, const std::int64_t* ints, std::size_t n) {
  std::string out;
  Pickler(DEFAULT_PROTOCOL, out).dump_with_run(obj, nullptr, ints, n);
  return out;
}

std::optional<Object> loads_with_ints(std::string_view data, std::vector<std::int64_t>& ints) {
  return IntRunReader(data, ints).load();
}

bool dump_call_request(std::string& out, std::string_view ident, std::string_view methodname, const Args& args,
                       const Object::Dict& kwds) {
  if (!kwds.empty()) return false;
  CallWriter w;
  w.opcode(op::MARK);
  if (!w.str(ident) || !w.str(methodname) || !w.args(args)) return false;
  w.opcode(op::EMPTY_DICT);
  w.memoize();
  w.opcode(op::TUPLE);
  w.memoize();
  w.finish(out);
  return true;
}

bool load_call_request(std::string_view data, Object& request) {
  CallReader r(data);
  if (!r.begin() || !r.next(op::MARK)) return false;
  auto* tuple = std::get_if<Object::Tuple>(&request.variant());
  if (tuple == nullptr) tuple = &std::get<Object::Tuple>((request = Object(Object::Tuple{})).variant());
  std::vector<Object>& items = tuple->items;
  items.resize(4);
  auto* args = std::get_if<Object::Tuple>(&items[2].variant());
  if (args == nullptr) args = &std::get<Object::Tuple>((items[2] = Object(Object::Tuple{})).variant());
  auto* kwds = std::get_if<Object::Dict>(&items[3].variant());
  if (kwds == nullptr || !kwds->empty()) items[3] = Object(Object::Dict{});
  return r.str(items[0]) && r.str(items[1]) && r.args(args->items) && r.end_of_value(op::EMPTY_DICT) &&
         r.end_of_value(op::TUPLE) && r.next(op::STOP);
}

bool dump_call_reply(std::string& out, const Object& reply) {
  const auto* tuple = std::get_if<Object::Tuple>(&reply.variant());
  if (tuple == nullptr || tuple->items.size() != 2) return false;
  const auto* kind = std::get_if<std::string>(&tuple->items[0].variant());
  if (kind == nullptr) return false;
  CallWriter w;
  if (!w.str(*kind) || !w.atom(tuple->items[1])) return false;
  w.opcode(op::TUPLE2);
  w.memoize();
  w.finish(out);
  return true;
}

bool load_call_reply(std::string_view data, std::string_view& kind, Object& value) {
  CallReader r(data);
  return r.begin() && r.str(kind) && r.atom(value) && r.end_of_value(op::TUPLE2) && r.next(op::STOP);
}

void ForkingPickler::register_global(const std::string& module, const std::string& qualname,
                                     Rebuild rebuild) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> guard(reg.lock);
  reg.globals[{module, qualname}] = std::move(rebuild);
}

ForkingPickler::Rebuild ForkingPickler::_rebuild_of(const std::string& module, const std::string& qualname) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> guard(reg.lock);
  auto it = reg.globals.find({module, qualname});
  return it == reg.globals.end() ? Rebuild() : it->second;
}

bool ForkingPickler::is_allowed(const std::string& module, const std::string& qualname) {
  if (is_native(module, qualname)) return true;
  Registry& reg = registry();
  std::lock_guard<std::mutex> guard(reg.lock);
  return reg.globals.count({module, qualname}) != 0;
}

}  // namespace multiprocessing::reduction
