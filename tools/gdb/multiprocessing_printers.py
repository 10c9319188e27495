# tools/gdb/multiprocessing_printers.py: gdb pretty-printers for the C++
# multiprocessing library.  With them, `print p` shows a Process as Python's
# repr() does, and a Connection, a SemLock, an Object, a Queue or a manager
# proxy as the few fields a reader wants to see.
#
# Load them by hand with one line (in gdb, or in ~/.gdbinit):
#     source /path/to/tools/gdb/multiprocessing_printers.py
# Programs linked with the library carry this file in their
# .debug_gdb_scripts section, so gdb loads it by itself once the program's
# directory is trusted:  add-auto-load-safe-path /path/to/build
#
# Each printer reads the program's memory only; none calls a function in the
# program, so they work on a core file and on a process stopped anywhere.
# They follow the members of the library's classes and libstdc++'s layout of
# std::string, std::vector, std::optional, std::variant, std::shared_ptr,
# std::unique_ptr and std::deque.
import re

import gdb
import gdb.printing

MAX_ITEMS = 20   # items shown of a list, tuple, dict or set
MAX_DEPTH = 6    # containers nested deeper show as "..."


# ------------------------------------------------------------ libstdc++ parts

def _raw_bytes(string_value):
    """The bytes of a std::string."""
    length = int(string_value["_M_string_length"])
    if length == 0:
        return b""
    pointer = string_value["_M_dataplus"]["_M_p"]
    return bytes(gdb.selected_inferior().read_memory(pointer, min(length, 4096)))


def _text(string_value):
    return _raw_bytes(string_value).decode("utf-8", "backslashreplace")


def _vector(vector_value):
    """The elements of a std::vector, as gdb.Values."""
    start = vector_value["_M_impl"]["_M_start"]
    finish = vector_value["_M_impl"]["_M_finish"]
    return [(start + i).dereference() for i in range(int(finish - start))]


def _optional(optional_value):
    """The value a std::optional holds, or None."""
    payload = optional_value["_M_payload"]
    if not bool(payload["_M_engaged"]):
        return None
    return payload["_M_payload"]["_M_value"]


def _first_pointer(value):
    """The first pointer member, searched depth first through bases and
    members (the raw pointer inside a std::unique_ptr)."""
    for field in value.type.strip_typedefs().fields():
        if field.name is None and not field.is_base_class:
            continue
        member = value[field]
        if member.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
            return member
        if member.type.strip_typedefs().code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            found = _first_pointer(member)
            if found is not None:
                return found
    return None


def _pointee(smart_pointer):
    """What a std::shared_ptr or std::unique_ptr points to, or None."""
    if "shared_ptr" in str(smart_pointer.type.strip_typedefs()):
        pointer = smart_pointer["_M_ptr"]
    else:
        pointer = _first_pointer(smart_pointer)
    if pointer is None or int(pointer) == 0:
        return None
    return pointer.dereference()


def _variant(variant_value):
    """(index, value) of the alternative a std::variant holds."""
    index = int(variant_value["_M_index"])
    union = variant_value["_M_u"]
    for _ in range(index):
        union = union["_M_rest"]
    first = union["_M_first"]  # _Uninitialized<T>: the value at offset 0
    alternative = first.type.strip_typedefs().template_argument(0)
    return index, first.address.cast(alternative.pointer()).dereference()


def _deque_size(deque_value):
    start = deque_value["_M_impl"]["_M_start"]
    finish = deque_value["_M_impl"]["_M_finish"]
    per_node = int(start["_M_last"] - start["_M_first"])
    nodes = int(finish["_M_node"] - start["_M_node"])
    if nodes == 0:
        return int(finish["_M_cur"] - start["_M_cur"])
    return (per_node * (nodes - 1) + int(finish["_M_cur"] - finish["_M_first"])
            + int(start["_M_last"] - start["_M_cur"]))


def _class_name(value):
    """The class name without namespaces: "ForkProcess", "Lock"."""
    value_type = value.type.strip_typedefs()
    try:
        if value_type.fields() and value.dynamic_type is not None:
            value_type = value.dynamic_type.strip_typedefs()
    except gdb.error:
        pass
    name = value_type.tag or value_type.name or "?"
    name = re.sub(r"<.*>$", "", name)
    return name.rsplit("::", 1)[-1]


# ------------------------------------------------------------ Object

# The order of reduction.hpp's Object::Variant.
(_NONE, _BOOL, _INT, _FLOAT, _STR, _BYTES, _LIST, _TUPLE, _DICT, _BYTEARRAY,
 _SET, _FROZENSET, _GLOBAL, _REDUCED) = range(14)


def _join(values, depth):
    shown = [object_repr(v, depth + 1) for v in values[:MAX_ITEMS]]
    if len(values) > MAX_ITEMS:
        shown.append("...")
    return ", ".join(shown)


def object_repr(value, depth=0):
    """Python's repr() of the value an Object holds."""
    if depth > MAX_DEPTH:
        return "..."
    index, held = _variant(value["value_"])
    if index == _NONE:
        return "None"
    if index == _BOOL:
        return "True" if bool(held) else "False"
    if index == _INT:
        return str(int(held))
    if index == _FLOAT:
        return repr(float(held))
    if index == _STR:
        return repr(_text(held))
    if index == _BYTES:
        return repr(_raw_bytes(held["data"]))
    if index == _BYTEARRAY:
        return "bytearray(%r)" % _raw_bytes(held["data"])
    if index == _LIST:
        return "[" + _join(_vector(held), depth) + "]"
    if index == _TUPLE:
        items = _vector(held["items"])
        return "(" + _join(items, depth) + ("," if len(items) == 1 else "") + ")"
    if index == _DICT:
        pairs = _vector(held)
        shown = ["%s: %s" % (object_repr(p["first"], depth + 1), object_repr(p["second"], depth + 1))
                 for p in pairs[:MAX_ITEMS]]
        if len(pairs) > MAX_ITEMS:
            shown.append("...")
        return "{" + ", ".join(shown) + "}"
    if index in (_SET, _FROZENSET):
        items = _vector(held["items_"])
        inner = "{" + _join(items, depth) + "}" if items else ""
        if index == _FROZENSET:
            return "frozenset(" + inner + ")"
        return inner or "set()"
    if index == _GLOBAL:
        box = _pointee(held["p_"])
        return "%s.%s" % (_text(box["module"]), _text(box["qualname"]))
    if index == _REDUCED:
        box = _pointee(held["p_"])
        callable_ = box["callable"]
        name = "%s.%s" % (_text(callable_["module"]), _text(callable_["qualname"]))
        return name + "(" + _join(_vector(box["args"]), depth) + ")"
    return "<Object of unknown kind %d>" % index


class TextPrinter:
    """A printer that shows `describe(value)`: an Object as the Python value it
    holds (object_repr), a Process as Python's repr() (process_repr), a
    Connection (connection_repr), a SemLock (semlock_repr)."""

    def __init__(self, describe, value):
        self.describe = describe
        self.value = value

    def to_string(self):
        return self.describe(self.value)


# ------------------------------------------------------------ processes

def process_repr(v):
    """A Process as Python's repr(): <ForkProcess name='ForkProcess-1' pid=12 parent=11 stopped exitcode=0>."""
    name = _optional(v["name_"])
    if name is not None:
        name = _text(name)
    elif int(v["default_name_"]["_M_string_length"]) > 0:
        name = _text(v["default_name_"])
    parts = ["<%s name=%s" % (_class_name(v), repr(name) if name is not None else "?")]
    popen = _pointee(v["popen_"])
    if popen is not None:
        parts.append("pid=%d" % int(popen["pid"]))
    parent = _optional(v["parent_pid_"])
    parts.append("parent=%s" % (int(parent) if parent is not None else "None"))
    exitcode = None
    if bool(v["closed_"]):
        parts.append("closed")
    elif popen is None:
        parts.append("initial")
    else:
        exitcode = _optional(popen["returncode"])
        parts.append("stopped" if exitcode is not None else "started")
    if exitcode is not None:
        parts.append("exitcode=%d" % int(exitcode))
    return " ".join(parts) + ">"


# ------------------------------------------------------------ connections

def connection_repr(value):
    fd = int(value["handle_"]["fd_"])
    if fd < 0:
        return "<Connection closed>"
    flags = [word for word, on in (("readable", value["readable_"]), ("writable", value["writable_"])) if bool(on)]
    return "<Connection fd=%d %s>" % (fd, " ".join(flags))


# ------------------------------------------------------------ SemLocks

def semlock_repr(value):
    impl = _pointee(value["impl_"])
    if impl is None:
        return "<%s (no semaphore)>" % _class_name(value)
    kind = "RECURSIVE_MUTEX" if int(impl["kind"]) == 0 else "SEMAPHORE"
    text = "<%s name=%r kind=%s" % (_class_name(value), _text(impl["name"]), kind)
    handle = impl["handle"]
    if int(handle) not in (0, 2**64 - 1):
        # glibc keeps the semaphore's value in the low 32 bits of its first word.
        counter = handle.cast(gdb.lookup_type("unsigned int").pointer()).dereference()
        text += " value=%d" % int(counter)
    text += " maxvalue=%d count=%d>" % (int(impl["maxvalue"]), int(impl["count"]["_M_i"]))
    return text


# ------------------------------------------------------------ Queue

class QueuePrinter:
    """queues::Queue (and JoinableQueue, SimpleQueue) by its parts."""

    def __init__(self, value):
        self.value = value
        self.state = _pointee(value["state_"])

    def to_string(self):
        if self.state is None:
            return "<%s (moved from)>" % _class_name(self.value)
        s = self.state
        fields = s.type.strip_typedefs()
        words = ["<%s" % _class_name(self.value)]
        if any(f.name == "maxsize" for f in fields.fields()):
            words.append("maxsize=%d" % int(s["maxsize"]))
        if any(f.name == "feeder" for f in fields.fields()):
            feeder = _pointee(s["feeder"])
            if feeder is not None:
                words.append("buffered=%d" % _deque_size(feeder["buffer"]))
                words.append("feeder=" + ("started" if _pointee(feeder["thread"]) is not None else "none"))
        if any(f.name == "closed" for f in fields.fields()):
            words.append("closed" if bool(s["closed"]) else "open")
        return " ".join(words) + ">"

    def children(self):
        if self.state is None:
            return
        s = self.state
        names = [f.name for f in s.type.strip_typedefs().fields()]
        ends = _pointee(s["ends"]) if "ends" in names else None
        if ends is not None:
            yield "reader", ends["reader"]
            yield "writer", ends["writer"]
        for name in ("reader", "writer", "rlock", "wlock", "sem"):
            if name in names:
                yield name, s[name]


# ------------------------------------------------------------ manager proxies

def _address(variant_value):
    index, held = _variant(variant_value)
    if index == 0:
        return repr(_text(held))
    return "(%r, %d)" % (_text(held["first"]), int(held["second"]))


class ProxyPrinter:
    """A manager proxy (BaseProxy, DictProxy, ListProxy...) by its parts."""

    def __init__(self, value):
        self.value = value
        self.state = _pointee(value["state_"])

    def to_string(self):
        if self.state is None:
            return "<%s unbound>" % _class_name(self.value)
        token = self.state["token"]
        return "<%s object, typeid %r, id %r>" % (_class_name(self.value), _text(token["typeid_"]),
                                                  _text(token["id"]))

    def children(self):
        if self.state is None:
            return
        token = self.state["token"]
        yield "address", _address(token["address"])
        yield "proxytype", _text(self.state["proxytype"])
        yield "exposed", "[" + ", ".join(repr(_text(e)) for e in _vector(self.state["exposed"])) + "]"


# ------------------------------------------------------------ registration

_PROCESS = re.compile(r"^multiprocessing::(\w+::)*\w*Process$")
_SEMLOCK = re.compile(r"^multiprocessing::synchronize::(SemLock|Lock|RLock|Semaphore|BoundedSemaphore)$")
_QUEUE = re.compile(r"^multiprocessing::queues::(Queue|JoinableQueue|SimpleQueue)$")
_PROXY = re.compile(r"^multiprocessing::managers::\w*Proxy$")


def lookup(value):
    value_type = value.type.strip_typedefs()
    if value_type.code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
        value = value.referenced_value()
        value_type = value.type.strip_typedefs()
    name = value_type.tag
    if not name:
        return None
    if name == "multiprocessing::Object":
        return TextPrinter(object_repr, value)
    if name == "multiprocessing::connection::Connection":
        return TextPrinter(connection_repr, value)
    if _SEMLOCK.match(name):
        return TextPrinter(semlock_repr, value)
    if _QUEUE.match(name):
        return QueuePrinter(value)
    if _PROXY.match(name):
        return ProxyPrinter(value)
    if _PROCESS.match(name) and any(f.name == "popen_" for f in _all_fields(value_type)):
        return TextPrinter(process_repr, value)
    return None


def _all_fields(value_type):
    for field in value_type.fields():
        yield field
        if field.is_base_class:
            yield from _all_fields(field.type.strip_typedefs())


def register(objfile=None):
    """Install the printers for `objfile` (None: for every program)."""
    # Replace rather than add, so that loading the file twice (auto-load,
    # then `source`) leaves one set.
    target = objfile if objfile is not None else gdb
    target.pretty_printers[:] = [p for p in target.pretty_printers
                                 if getattr(p, "__name__", "") != "multiprocessing_lookup"]
    lookup.__name__ = "multiprocessing_lookup"
    target.pretty_printers.append(lookup)


register(gdb.current_objfile())
