// multiprocessing/reduction/pickle.hpp
// The pickle protocol as CPython 3.11 speaks it, for the values of reduction.hpp.
// Mirrors the parts of Lib/pickle.py (Pickler, _Unpickler), Lib/pickletools.py (dis)
// and Lib/multiprocessing/reduction.py (ForkingPickler) that the package needs; the
// byte layout follows CPython's C accelerator Modules/_pickle.c, which is what
// `pickle.dumps` runs, so that for simple values `dumps(v, 4)` is byte for byte what
// `pickle.dumps(v, 4)` gives.
//
// What is written, per protocol (pickle.py's save_* methods):
//   None, bool          NONE, NEWTRUE / NEWFALSE
//   int                 BININT1 / BININT2 / BININT / LONG1 (the whole int64 range)
//   float               BINFLOAT
//   str                 BINUNICODE; from protocol 4 SHORT_BINUNICODE / BINUNICODE8
//   bytes               protocol 2: REDUCE of `_codecs.encode(latin-1 text, 'latin1')`,
//                       b'' as `__builtin__.bytes()`; from 3: SHORT_BINBYTES / BINBYTES /
//                       BINBYTES8
//   bytearray           protocol 5: BYTEARRAY8; before: REDUCE of `builtins.bytearray(bytes)`
//   tuple, list, dict   EMPTY_TUPLE / TUPLE1-3 / MARK..TUPLE; EMPTY_LIST + APPEND(S);
//                       EMPTY_DICT + SETITEM(S) (batches of 1000, as CPython)
//   set, frozenset      protocol 4: EMPTY_SET + ADDITEMS, MARK..FROZENSET; before:
//                       REDUCE of `builtins.set([...])` / `builtins.frozenset([...])`
//   Global, Reduced     GLOBAL (protocol < 4) or STACK_GLOBAL; then args and REDUCE or
//                       NEWOBJ, then state and BUILD, as Pickler.save_reduce writes them
// A str is UTF-8 and is written and read as such, without validation (CPython refuses
// invalid UTF-8 when it loads).  A set is written in Object::compare order, which is
// CPython's order for small non-negative ints but not in general (CPython's depends on
// hashes), so set pickles equal CPython's bytes only in that case; they always load.
// Protocol 4 and 5 output is framed (FRAME every 64 KiB, large str/bytes outside frames)
// exactly as _pickle.c frames it.  Protocols 2 and 3 map the module `builtins` to
// `__builtin__` (fix_imports), as CPython does.
//
// Memo and shared references.  Object has value semantics: a program cannot tell two
// equal lists from one list held twice.  So the writer memoizes (PUT / MEMOIZE) every
// value CPython memoizes, in the same order, and re-references (GET) only values that
// are immutable and equal: the same str, bytes or global written again is a BINGET, as
// CPython's memo gives for the same (interned) object.  A repeated container is written
// again in full; CPython would write a BINGET for the same list object.  The reader
// honours every memo opcode: a GET of a container yields an equal copy, and a
// recursive structure (a list that contains itself) is refused with UnpicklingError,
// since a value cannot contain itself.
//
// Safety of loads().  Unpickling never runs code.  Globals (GLOBAL, STACK_GLOBAL, INST)
// are looked up in an allow-list: builtins.set, frozenset, bytearray, bytes, list,
// _codecs.encode, and whatever ForkingPickler::register_global added; any other name is
// an UnpicklingError "global 'os.system' is forbidden".  REDUCE / NEWOBJ / BUILD of an
// allowed global are evaluated natively (set) or kept as data (Object::Reduced).
// Hostile input is bounded: every length is checked against the bytes that remain
// before anything is allocated; nesting deeper than kMaxDepth is refused; and the value
// built may hold at most 8 Objects per input byte (plus 4096; a str or bytes counts
// one per 64 octets; items that a call such as set(list) copies count too), so GETs
// that copy the same container over and over cannot blow memory up.  The memory used
// is linear in the input: while reading, about 90 bytes per input byte at worst (one
// 80-byte graph node per opcode), then the result, at most 8 Objects of 40 bytes per input
// byte.  Every failure is an UnpicklingError, an int beyond 64 bits too; nothing
// else escapes, nothing crashes (the tests fuzz it, and it has run under ASan/UBSan).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/reduction.hpp"

namespace multiprocessing {

/// Python: pickle.PickleError, the base of the two below.
class PickleError : public Exception {
 public:
  using Exception::Exception;
  const char* python_name() const noexcept override { return "PickleError"; }
};

/// Python: pickle.PicklingError: a value that cannot be pickled (too deep, an
/// int or length beyond what the protocol can say, a protocol out of range).
class PicklingError : public PickleError {
 public:
  using PickleError::PickleError;
  const char* python_name() const noexcept override { return "PicklingError"; }
};

/// Python: pickle.UnpicklingError: bytes that are not a pickle this port can read
/// (truncated, bad opcode, forbidden global, over a bound).
class UnpicklingError : public PickleError {
 public:
  using PickleError::PickleError;
  const char* python_name() const noexcept override { return "UnpicklingError"; }
};

namespace reduction {

using multiprocessing::PickleError;
using multiprocessing::PicklingError;
using multiprocessing::UnpicklingError;

/// Python: pickle.HIGHEST_PROTOCOL.
inline constexpr int HIGHEST_PROTOCOL = 5;
/// Python: pickle.DEFAULT_PROTOCOL in 3.11, what ForkingPickler uses.
inline constexpr int DEFAULT_PROTOCOL = 4;
/// The deepest nesting of containers dumps() writes and loads() builds
/// (Python stops at its recursion limit, 1000 by default).
inline constexpr int kMaxDepth = 1000;

/// Pickle a value.  Python: ForkingPickler.dumps(obj, protocol) (= pickle.dumps).
/// \param obj      the value; an Object::Reduced is written as its __reduce__ data.
/// \param protocol 2..5 (0 and 1 are not written by this port).
/// \return the pickle bytes; CPython's pickle.loads reads them back to the equal
///         Python value.
/// \throws PicklingError for a protocol out of range, nesting deeper than kMaxDepth,
///         or (protocol < 4) a str or bytes of 4 GiB or more.
std::string dumps(const Object& obj, int protocol = DEFAULT_PROTOCOL);

/// Unpickle one value.  Python: ForkingPickler.loads (= pickle.loads).  Reads
/// protocols 0 to 5 (the opcodes listed in pickletools) except out-of-band buffers,
/// persistent ids and the extension registry.  Bytes after STOP are ignored, as
/// Python ignores them.
/// \throws UnpicklingError for malformed, truncated, hostile or unsupported input,
///         and for an int that does not fit in 64 bits.  Empty input too (Python's
///         EOFError "Ran out of input").
Object loads(std::string_view data);

/// Python: reduction.dump(obj, file, protocol): append the pickle of `obj` to
/// `file`.  Several pickles written one after another are read back one at a
/// time by load(), as spawn sends its preparation data and process object.
void dump(const Object& obj, std::string& file, int protocol = DEFAULT_PROTOCOL);

/// Python: pickle.load(file): read one pickle from the front of `file` and
/// advance `file` past it (past its STOP opcode), leaving what follows.
/// \throws UnpicklingError as loads() does.
Object load(std::string_view& file);

/// A listing of the pickle's opcodes, formatted as Python's pickletools.dis prints
/// it (offset, opcode byte, name indented by MARK depth, argument, memo notes), ending
/// with "highest protocol among opcodes = N".  Unlike dis, it does not emulate the
/// stack, so a POP that removes a MARK is not shown as one (no pickler writes that).
/// \throws ValueError for an unknown opcode or a truncated pickle, as dis does.
std::string dis(std::string_view data);

/// Fast paths for many ints, for a Pool's map (pool.cpp): a chunk of a map and the
/// list of its results cross as one pickle each, and these write and read their
/// items without an Object per item.  The bytes are exactly dumps()'s.
///
/// Where the value holds int_run_placeholder(true) (a global with an empty
/// module, which no pickle can name), dumps_with_items() writes the tuple of
/// `items[0..n)` (borrowed, not copied); where it holds
/// int_run_placeholder(false), dumps_with_ints() writes the list of
/// `ints[0..n)`.  Everything else is written as dumps() writes it.
Object::Global int_run_placeholder(bool tuple);
/// \throws PicklingError as dumps() does.
std::string dumps_with_items(const Object& obj, const Object* items, std::size_t n);
/// \throws PicklingError as dumps() does.
std::string dumps_with_ints(const Object& obj, const std::int64_t* ints, std::size_t n);
/// The reading side: a protocol 4 or 5 pickle made of None, bools, ints of
/// 32 bits, str, globals (allowed as loads() allows them), tuples, lists and
/// empty dicts, in which one tuple or one list holds only ints of 32 bits, is
/// read with that container's ints appended to `ints` and the container itself
/// replaced by int_run_placeholder(true) for a tuple, (false) for a list.  nullopt for anything else (then
/// loads() reads it, and says what is wrong if anything is); `ints` may then
/// hold some ints already, which the caller discards.
std::optional<Object> loads_with_ints(std::string_view data, std::vector<std::int64_t>& ints);

/// Fast paths for the two messages of a manager's proxy call (managers.cpp):
/// the request `(ident, methodname, args, kwds)` and the reply `(kind, value)`.
/// They handle the usual shapes, in which every value is a "small atom" (None,
/// a bool, an int of 32 bits, or a str shorter than 256 bytes), the args a
/// tuple of at most kCallMaxArgs of them and the kwds an empty dict; they
/// write exactly the bytes of dump() (protocol DEFAULT_PROTOCOL) and read
/// exactly the Objects of loads(), without the generic pickler's dispatch on
/// types or the unpickler's per-opcode machinery.  Anything else: they return
/// false, and the caller uses dump() or loads(), which handle everything (and
/// say what is wrong, if anything is).
inline constexpr std::size_t kCallMaxArgs = 16;

/// Append to `out` the pickle of the tuple `(ident, methodname, tuple(args),
/// kwds)`, as dump() writes it, when ident and methodname are strs shorter
/// than 256 bytes, `args` small atoms and `kwds` empty.  False otherwise,
/// `out` left as it was.
bool dump_call_request(std::string& out, std::string_view ident, std::string_view methodname, const Args& args,
                       const Object::Dict& kwds);

/// Read the pickle of a request `(ident, methodname, args, kwds)` whose ident
/// and methodname are strs, args a tuple of small atoms and kwds an empty dict
/// (as dump_call_request writes it, or CPython's pickle.dumps with protocol 4
/// or 5) into `request`: the Object::Tuple that loads() would give.  When
/// `request` already holds such a tuple (the one read before), its room is
/// reused.  False for any other pickle; `request` then holds some unspecified
/// tuple of atoms, which the caller replaces.
bool load_call_request(std::string_view data, Object& request);

/// Append to `out` the pickle of `reply` as dump() writes it, when it is a
/// tuple `(kind, value)` of a str shorter than 256 bytes and a small atom.
/// False otherwise, `out` left as it was.
bool dump_call_reply(std::string& out, const Object& reply);

/// Read the pickle of a reply `(kind, value)` of a str and a small atom.
/// `kind` is then a view into `data`, and `value` what loads() would give
/// for the second item.  False for any other pickle (`value` unspecified).
bool load_call_reply(std::string_view data, std::string_view& kind, Object& value);

/// Python: multiprocessing.reduction.ForkingPickler.
///
/// Writing: a C++ type is pickled as an instance of a Python class by giving it a
/// Convert<T> (reduction.hpp) whose to_object returns an Object::Reduced, the data
/// of Python's `__reduce__`: for a manager Token,
/// `Reduced{{"multiprocessing.managers", "Token"}, {}, true, {Tuple{typeid, address, id}}}`
/// writes `STACK_GLOBAL EMPTY_TUPLE NEWOBJ <state> BUILD` as CPython does.  This is
/// the port's ForkingPickler.register(type, reduce): nothing has to be registered to
/// write.
///
/// Reading: loads() refuses every global it does not know.  register_global adds one
/// (module, qualname) to the allow-list, optionally with a rebuild function, the
/// port's copyreg / `find_class` for the package's own classes: managers register
/// `multiprocessing.managers.Token` and `RebuildProxy`, connection registers
/// `multiprocessing.connection.rebuild_connection`.  Without a rebuild function the
/// loaded value is the Object::Reduced (or Object::Global) itself; read it with
/// Object::reduced() (Object::global()).
class ForkingPickler {
 public:
  /// Turns a loaded Object::Reduced into the value the program wants (it may
  /// return the Reduced unchanged).  Called once per rebuilt object, innermost
  /// first, after the whole pickle has been read; what it throws propagates from loads.
  using Rebuild = std::function<Object(Object reduced)>;

  /// Python: ForkingPickler.dumps.
  static std::string dumps(const Object& obj, int protocol = DEFAULT_PROTOCOL) {
    return reduction::dumps(obj, protocol);
  }
  /// Python: ForkingPickler.loads.
  static Object loads(std::string_view data) { return reduction::loads(data); }

  /// Allow loads() to name `module.qualname` (GLOBAL / STACK_GLOBAL) and call it
  /// (REDUCE, NEWOBJ, BUILD).  Registering the same name again replaces the rebuild
  /// function.  The built-in names (builtins.set...) are always evaluated natively,
  /// whatever is registered for them.  Thread-safe; a registration lasts for the
  /// life of the process.
  /// Python: ForkingPickler.register + the globals find_class would import.
  static void register_global(const std::string& module, const std::string& qualname,
                              Rebuild rebuild = nullptr);
  /// Whether loads() accepts this global (built-in allow-list or registered).
  static bool is_allowed(const std::string& module, const std::string& qualname);
  /// The rebuild function registered for `module.qualname` (empty when it has
  /// none or is not registered), so that code which registers a name again
  /// for a while (a test reading pickles as plain data) can put it back.
  static Rebuild _rebuild_of(const std::string& module, const std::string& qualname);
};

}  // namespace reduction
}  // namespace multiprocessing
